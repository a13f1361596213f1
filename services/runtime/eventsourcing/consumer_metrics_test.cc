#include "services/runtime/eventsourcing/consumer_metrics.h"

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/runtime/server/testing/registry_values.h"

namespace helpline::es {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST(PartitionLagTest, CaughtUpIsZeroRecordsAndZeroSeconds) {
  PartitionLag lag(kStart);
  PartitionLag::Lag now = lag.Update(10, 10, kStart - absl::Hours(3), kStart + absl::Seconds(5));
  EXPECT_EQ(now.records, 0);
  EXPECT_EQ(now.behind, absl::ZeroDuration());
}

TEST(PartitionLagTest, AStalledReaderIsBehindSinceItLastHadNothingToRead) {
  PartitionLag lag(kStart);
  lag.Update(10, 10, kStart - absl::Hours(3), kStart + absl::Seconds(10));
  // Records arrive after a quiet hour; the reader applies none of them. The
  // last record it applied is three hours old, but nothing waits that long.
  PartitionLag::Lag stalled =
      lag.Update(10, 25, kStart - absl::Hours(3), kStart + absl::Seconds(70));
  EXPECT_EQ(stalled.records, 15);
  EXPECT_EQ(stalled.behind, absl::Seconds(60));
}

TEST(PartitionLagTest, AReaderKeepingUpUnderASteadyFlowIsBehindByItsLastRecordsAge) {
  PartitionLag lag(kStart);
  // Never quite caught up for ten minutes, each record applied 200 ms after
  // it was written.
  PartitionLag::Lag flowing = lag.Update(500, 502, kStart + absl::Minutes(10) - absl::Milliseconds(200),
                                         kStart + absl::Minutes(10));
  EXPECT_EQ(flowing.records, 2);
  EXPECT_EQ(flowing.behind, absl::Milliseconds(200));
}

TEST(PartitionLagTest, AReaderReplayingFromTheStartIsBehindAtMostSinceItStarted) {
  PartitionLag lag(kStart);
  PartitionLag::Lag replaying =
      lag.Update(1'000, 90'000, kStart - absl::Hours(24 * 30), kStart + absl::Seconds(20));
  EXPECT_EQ(replaying.records, 89'000);
  EXPECT_EQ(replaying.behind, absl::Seconds(20));
}

TEST(ConsumerMetricsTest, LagAndDeadLettersAreExportedByReaderAndRemovedWhenAPartitionLeaves) {
  prometheus::Registry registry;
  ConsumerMetrics metrics(registry);
  metrics.SetLag("payments.reactions", "helpline.sessions.events", 3,
                 {.records = 7, .behind = absl::Seconds(12)});
  metrics.CountDeadLetter("payments.processor", "refused");
  metrics.CountDeadLetter("payments.processor", "refused");
  auto value = [&](const std::string& name) { return server::testing::ValueOf(registry, name); };
  EXPECT_EQ(value("helpline_consumer_lag_records"), 7);
  EXPECT_EQ(value("helpline_consumer_lag_seconds"), 12);
  EXPECT_EQ(value("helpline_dead_letters_total"), 2);
  metrics.RemoveLag("payments.reactions", "helpline.sessions.events", 3);
  EXPECT_EQ(value("helpline_consumer_lag_records"), std::nullopt);
  EXPECT_EQ(value("helpline_consumer_lag_seconds"), std::nullopt);
}

}  // namespace
}  // namespace helpline::es
