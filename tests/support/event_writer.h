#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/kafka/producer.h"

namespace helpline::testing {

// Writes events onto a service's events topic the way its processor does
// (key, meta, CloudEvents headers), for tests that play that service
// towards the services reacting to it. Thread-safe.
class EventWriter {
 public:
  // `service` as in "matching"; `prefix` the test's topic prefix.
  EventWriter(const std::string& service, const std::string& prefix);

  // Stamps `meta` (a new event id, the aggregate's next version, now) and
  // writes the event, waiting for Kafka's acknowledgement.
  template <class Event>
  absl::Status Write(const std::string& aggregate_id, Event& event) {
    return Write(aggregate_id, event, *event.mutable_meta());
  }
  absl::Status Write(const std::string& aggregate_id, google::protobuf::Message& event,
                     runtime::v1::EventMeta& meta);
  // Writes an event written before once more, unchanged (a redelivery).
  absl::Status Rewrite(const google::protobuf::Message& event, const runtime::v1::EventMeta& meta);

 private:
  const std::string source_;
  const std::string topic_;
  std::unique_ptr<kafka::Producer> producer_;
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, int64_t> versions_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::testing
