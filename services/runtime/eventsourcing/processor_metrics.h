#pragma once

#include <string>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/runtime/eventsourcing/consumer_metrics.h"

namespace helpline::es {

// What a processor reports to Prometheus. Its dead letters are counted with
// the other readers' (helpline_dead_letters_total{consumer=`consumer`}): the
// registry merges families of the same name.
class ProcessorMetrics {
 public:
  explicit ProcessorMetrics(prometheus::Registry& registry, std::string consumer = "processor");

  // result: "ok", "rejected", "duplicate", "dead_letter" (undecodable),
  // "refused" (a reaction's command refused: a dead letter too).
  void CountCommand(const std::string& result);
  void ObserveTransaction(double seconds, int commands);
  void CountTransactionFailure(const std::string& kind);  // "aborted", "fatal"
  void ObserveRecovery(double seconds, int64_t events_replayed);
  void CountUnsettledOffsetsPassed();
  // Commands written to the partition and not yet handled.
  void SetCommandsLag(int32_t partition, int64_t commands, absl::Duration behind);
  // While the count is not known (the partition is being rebuilt).
  void SetCommandsLagSeconds(int32_t partition, absl::Duration behind);

 private:
  prometheus::Family<prometheus::Counter>& commands_;
  prometheus::Histogram& transaction_seconds_;
  prometheus::Histogram& batch_commands_;
  prometheus::Family<prometheus::Counter>& transaction_failures_;
  prometheus::Histogram& recovery_seconds_;
  prometheus::Counter& events_replayed_;
  prometheus::Family<prometheus::Gauge>& commands_lag_;
  prometheus::Family<prometheus::Gauge>& commands_lag_seconds_;
  prometheus::Counter& unsettled_offsets_passed_;
  const std::string consumer_;
  ConsumerMetrics consumers_;
};

}  // namespace helpline::es
