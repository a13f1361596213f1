#pragma once

#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace helpline::es {

// What a processor reports to Prometheus.
class ProcessorMetrics {
 public:
  explicit ProcessorMetrics(prometheus::Registry& registry);

  // result: "ok", "rejected", "duplicate", "dead_letter", "refused".
  void CountCommand(const std::string& result);
  void ObserveTransaction(double seconds, int commands);
  void CountTransactionFailure(const std::string& kind);  // "aborted", "fatal"
  void ObserveRecovery(double seconds, int64_t events_replayed);
  // Commands written to the partition and not yet handled.
  void SetCommandsLag(int32_t partition, int64_t commands);

 private:
  prometheus::Family<prometheus::Counter>& commands_;
  prometheus::Histogram& transaction_seconds_;
  prometheus::Histogram& batch_commands_;
  prometheus::Family<prometheus::Counter>& transaction_failures_;
  prometheus::Histogram& recovery_seconds_;
  prometheus::Counter& events_replayed_;
  prometheus::Family<prometheus::Gauge>& commands_lag_;
};

}  // namespace helpline::es
