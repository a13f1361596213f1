#pragma once

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/topics.h"

// For the benchmark drivers that send commands through Kafka themselves.
namespace helpline::bench {

// helpline.<service>.{commands,events,replies,snapshots} and the dead-letter
// topic, all with `prefix`.
inline absl::Status CreateServiceTopics(const kafka::ClientConfig& client,
                                        const std::string& service, const std::string& prefix,
                                        int partitions) {
  kafka::TopicPlan plan;
  plan.name_prefix = prefix;
  plan.partitions = partitions;
  nlohmann::json declaration = {
      {"services", {service}},
      {"per_service",
       {{"commands", {{"configs", {{"retention.ms", "3600000"}}}}},
        {"events", {{"configs", {{"retention.ms", "-1"}}}}},
        {"replies", {{"configs", {{"retention.ms", "3600000"}}}}},
        {"snapshots", {{"configs", {{"cleanup.policy", "compact"}}}}}}},
      {"shared", {{"helpline.deadletter", nlohmann::json::object()}}}};
  absl::StatusOr<std::vector<kafka::TopicSpec>> topics =
      kafka::TopicsFromDeclaration(declaration.dump(), plan);
  if (!topics.ok()) return topics.status();
  absl::StatusOr<std::unique_ptr<kafka::Admin>> admin = kafka::Admin::Create(client);
  if (!admin.ok()) return admin.status();
  return (*admin)->CreateTopics(*topics, absl::Seconds(60)).status();
}

// Latencies of completed commands, and how many completed.
class Recorder {
 public:
  void Done(absl::Duration latency, bool ok) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ok) {
      latencies_ms_.push_back(absl::ToDoubleMilliseconds(latency));
    } else {
      ++failures_;
    }
    --in_flight_;
    changed_.notify_all();
  }
  void WaitBelow(int limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return in_flight_ < limit; });
    ++in_flight_;
  }
  void Drain() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return in_flight_ == 0; });
  }
  size_t completed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return latencies_ms_.size();
  }
  double Percentile(double q) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (latencies_ms_.empty()) return 0;
    std::vector<double> sorted = latencies_ms_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()))];
  }
  int64_t failures() {
    std::lock_guard<std::mutex> lock(mutex_);
    return failures_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<double> latencies_ms_;
  int in_flight_ = 0;
  int64_t failures_ = 0;
};

}  // namespace helpline::bench
