#pragma once

#include <string>

#include "services/runtime/kafka/topics.h"

namespace helpline::es {

// The topics one service owns (docs/architecture.md §2), plus the shared dead-letter
// topic. Tests give each run a prefix of its own.
struct ServiceTopics {
  std::string service;
  std::string commands;
  std::string events;
  std::string replies;
  std::string snapshots;
  // The per-user data keys that seal what people typed (compacted).
  std::string keys;
  std::string deadletter;

  static ServiceTopics For(const std::string& service, const std::string& prefix = "") {
    return ServiceTopics{service,
                         prefix + kafka::ServiceTopic(service, "commands"),
                         prefix + kafka::ServiceTopic(service, "events"),
                         prefix + kafka::ServiceTopic(service, "replies"),
                         prefix + kafka::ServiceTopic(service, "snapshots"),
                       prefix + kafka::ServiceTopic(service, "keys"),
                         prefix + "helpline.deadletter"};
  }
};

}  // namespace helpline::es
