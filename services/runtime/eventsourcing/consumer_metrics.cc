#include "services/runtime/eventsourcing/consumer_metrics.h"

#include <algorithm>

namespace helpline::es {
namespace {

prometheus::Labels LagLabels(const std::string& consumer, const std::string& topic,
                             int32_t partition) {
  return {{"consumer", consumer}, {"topic", topic}, {"partition", std::to_string(partition)}};
}

}  // namespace

PartitionLag::Lag PartitionLag::Update(int64_t next_offset, int64_t end,
                                       std::optional<absl::Time> last_applied_written,
                                       absl::Time now) {
  Lag lag;
  lag.records = std::max<int64_t>(0, end - next_offset);
  if (lag.records == 0) {
    caught_up_at_ = now;
    return lag;
  }
  absl::Time oldest_possible = caught_up_at_;
  if (last_applied_written) oldest_possible = std::max(oldest_possible, *last_applied_written);
  lag.behind = std::max(absl::ZeroDuration(), now - oldest_possible);
  return lag;
}

ConsumerMetrics::ConsumerMetrics(prometheus::Registry& registry)
    : lag_records_(prometheus::BuildGauge()
                       .Name("helpline_consumer_lag_records")
                       .Help("Records in a partition that a reader (read model, reactor) has "
                             "not applied yet")
                       .Register(registry)),
      lag_seconds_(prometheus::BuildGauge()
                       .Name("helpline_consumer_lag_seconds")
                       .Help("How long the oldest record a reader has not applied may have "
                             "waited (an upper bound; 0 when caught up)")
                       .Register(registry)),
      dead_letters_(prometheus::BuildCounter()
                        .Name("helpline_dead_letters_total")
                        .Help("Records sent to the dead-letter topic, by reader and reason")
                        .Register(registry)) {}

void ConsumerMetrics::AddReader(const std::string& consumer) {
  for (const char* reason : {"undecodable", "refused"}) {
    dead_letters_.Add({{"consumer", consumer}, {"reason", reason}});
  }
}

void ConsumerMetrics::SetLag(const std::string& consumer, const std::string& topic,
                             int32_t partition, const PartitionLag::Lag& lag) {
  prometheus::Labels labels = LagLabels(consumer, topic, partition);
  lag_records_.Add(labels).Set(static_cast<double>(lag.records));
  lag_seconds_.Add(labels).Set(absl::ToDoubleSeconds(lag.behind));
}

void ConsumerMetrics::RemoveLag(const std::string& consumer, const std::string& topic,
                                int32_t partition) {
  prometheus::Labels labels = LagLabels(consumer, topic, partition);
  if (lag_records_.Has(labels)) lag_records_.Remove(&lag_records_.Add(labels));
  if (lag_seconds_.Has(labels)) lag_seconds_.Remove(&lag_seconds_.Add(labels));
}

void ConsumerMetrics::CountDeadLetter(const std::string& consumer, const std::string& reason) {
  dead_letters_.Add({{"consumer", consumer}, {"reason", reason}}).Increment();
}

}  // namespace helpline::es
