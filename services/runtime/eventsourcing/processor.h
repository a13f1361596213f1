#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/partition_worker.h"
#include "services/runtime/eventsourcing/processor_metrics.h"
#include "services/runtime/kafka/consumer.h"

namespace helpline::es {

// A service's processor role: joins the consumer group on its commands topic
// and runs one PartitionWorker per partition the group gives it. Partitions
// taken away in a rebalance finish (or, when lost, abandon) their batch first.
class Processor {
 public:
  // `metrics` may be null.
  Processor(kafka::ClientConfig client, ProcessorOptions options, const AggregateType& type,
            const Clock& clock, ProcessorMetrics* metrics);
  ~Processor();

  // Checks the topics (commands, events and snapshots must have the same
  // partition count) and starts consuming.
  absl::Status Start();
  // Finishes the transactions in flight, commits them and leaves the group.
  void Stop();

  std::vector<int32_t> OwnedPartitions();
  // The group assigned this processor its partitions (perhaps none) and every
  // one of them is rebuilt and taking commands.
  bool Ready();
  // Digest of an owned partition's state; empty if not owned here.
  std::string StateDigest(int32_t partition);
  int64_t TimesFenced();

 private:
  void OnRebalance(const kafka::Rebalance& rebalance);
  void StartWorker(int32_t partition);

  const kafka::ClientConfig client_;
  const ProcessorOptions options_;
  const AggregateType& type_;
  const Clock& clock_;
  ProcessorMetrics* metrics_;

  std::unique_ptr<kafka::Consumer> consumer_;
  absl::Mutex workers_mutex_;
  std::map<int32_t, std::unique_ptr<PartitionWorker>> workers_ ABSL_GUARDED_BY(workers_mutex_);
  std::atomic<bool> stopping_{false};
  std::atomic<bool> assignment_known_{false};
  std::thread poller_;
};

}  // namespace helpline::es
