#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace helpline::es {

// How far one reader is behind one partition, from what the reader knows:
// where it is, where the partition ends, and when the last record it
// applied was written. `behind` is an upper bound on the age of the oldest
// record not yet applied: the time since the reader last had nothing to
// read, or since the last record it applied was written if that is sooner
// (a reader that keeps up under a steady flow is never quite caught up).
class PartitionLag {
 public:
  struct Lag {
    int64_t records = 0;
    absl::Duration behind;
  };
  // `since`: when the reader started on the partition.
  explicit PartitionLag(absl::Time since) : caught_up_at_(since) {}

  Lag Update(int64_t next_offset, int64_t end, std::optional<absl::Time> last_applied_written,
             absl::Time now);

 private:
  absl::Time caught_up_at_;
};

// What the readers of a service's streams (read models' feeds, reactors,
// the processor) report: helpline_consumer_lag_records and
// helpline_consumer_lag_seconds{consumer,topic,partition}, and
// helpline_dead_letters_total{consumer,reason}. `consumer` names the
// reader ("matching.read-model", "payments.reactions", "payments.processor").
class ConsumerMetrics {
 public:
  explicit ConsumerMetrics(prometheus::Registry& registry);

  // Starts the reader's dead-letter counts at zero, so that its first dead
  // letter is an increase Prometheus sees.
  void AddReader(const std::string& consumer);
  void SetLag(const std::string& consumer, const std::string& topic, int32_t partition,
              const PartitionLag::Lag& lag);
  // The partition is no longer this reader's.
  void RemoveLag(const std::string& consumer, const std::string& topic, int32_t partition);
  // reason: "undecodable" (not the record type the reader expects) or
  // "refused" (a reaction's command its processor refused).
  void CountDeadLetter(const std::string& consumer, const std::string& reason);

 private:
  prometheus::Family<prometheus::Gauge>& lag_records_;
  prometheus::Family<prometheus::Gauge>& lag_seconds_;
  prometheus::Family<prometheus::Counter>& dead_letters_;
};

}  // namespace helpline::es
