#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/runtime/kafka/admin.h"

namespace helpline::kafka {

// How a declared topic list (deploy/topics.json) becomes concrete topics in
// one cluster.
struct TopicPlan {
  std::string name_prefix;  // tests use one per run: "<prefix>helpline.identity.events"
  int partitions = 12;
  int replication_factor = 1;
  std::map<std::string, std::string> extra_configs;  // applied to every topic, e.g. min.insync.replicas
};

// The service topics are helpline.<service>.<kind> for every service and
// kind; shared topics are named in full.
absl::StatusOr<std::vector<TopicSpec>> TopicsFromDeclaration(const std::string& json_text,
                                                             const TopicPlan& plan);

// "helpline.<service>.<kind>"
std::string ServiceTopic(const std::string& service, const std::string& kind);

}  // namespace helpline::kafka
