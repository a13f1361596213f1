// Replay against logs written the way the processor writes them (batches of
// commands at one time, then the timers due then), with the counter domain:
// a faithful log re-decides without a difference, and every kind of
// tampering is reported at the event it touched.
#include "tools/replay/replay.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/command_batch.h"
#include "services/runtime/eventsourcing/partition_state.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"

namespace helpline::replay {
namespace {

using helpline::testing::v1::CounterCommand;
using helpline::testing::v1::CounterEvent;

const absl::Time kStart = absl::FromUnixSeconds(1'780'000'000);

// Writes a log as a processor of one partition would.
class Recorder {
 public:
  Recorder()
      : settings_{&es::testing::CounterType(), "test.counter",
                  es::ServiceTopics::For("counter", "test."), 900 * 1024, 0,
                  /*log_dead_letters=*/false} {
    log_.service = "test.counter";
    log_.type = &es::testing::CounterType();
  }

  CounterCommand Increment(const std::string& counter, const std::string& request, int by,
                           int limit = 0) {
    CounterCommand command = Meta(counter, request);
    command.mutable_increment()->set_by(by);
    command.mutable_increment()->set_limit(limit);
    return command;
  }
  CounterCommand Alarm(const std::string& counter, const std::string& request, absl::Time at) {
    CounterCommand command = Meta(counter, request);
    *command.mutable_schedule_alarm()->mutable_at() = ToProtoTime(at);
    return command;
  }

  // One batch at `now`: the commands in order, then the timers due.
  void Batch(absl::Time now, const std::vector<CounterCommand>& commands) {
    es::PartitionBatch batch(settings_, 0, state_);
    for (const CounterCommand& command : commands) {
      kafka::Record record;
      record.topic = settings_.topics.commands;
      record.offset = static_cast<int64_t>(log_.commands[0].size());
      record.key = command.meta().aggregate_id();
      record.value = command.SerializeAsString();
      record.timestamp = now - absl::Milliseconds(5);
      log_.commands[0].push_back(record);
      batch.Decide(record, now);
    }
    batch.FireDueTimers(now, 1000);
    std::vector<int64_t> offsets;
    for (const kafka::OutgoingRecord& event : batch.events()) {
      kafka::Record record;
      record.topic = settings_.topics.events;
      record.offset = static_cast<int64_t>(log_.events[0].size());
      record.key = event.key;
      record.value = event.value;
      record.timestamp = now;
      offsets.push_back(record.offset);
      log_.events[0].push_back(record);
    }
    batch.RecordOffsets(offsets);
    std::set<std::string> changed;
    batch.Commit(changed);
  }

  RecordedLog& log() { return log_; }

 private:
  CounterCommand Meta(const std::string& counter, const std::string& request) {
    CounterCommand command;
    command.mutable_meta()->set_command_id(absl::StrCat(counter, "/", request));
    command.mutable_meta()->set_aggregate_id(counter);
    command.mutable_meta()->mutable_actor()->set_user_id("user-1");
    return command;
  }

  es::BatchSettings settings_;
  es::PartitionState state_{es::testing::CounterType(), absl::Hours(24)};
  RecordedLog log_;
};

// Three counters, a refusal, a retry, two alarms ringing in one batch.
Recorder AnEveningOfCounting() {
  Recorder recorder;
  recorder.Batch(kStart, {recorder.Increment("a", "1", 5), recorder.Increment("b", "1", 2),
                          recorder.Alarm("a", "2", kStart + absl::Minutes(1)),
                          recorder.Alarm("c", "1", kStart + absl::Minutes(1))});
  recorder.Batch(kStart + absl::Seconds(10),
                 {recorder.Increment("a", "3", 10, /*limit=*/12),  // refused: 15 > 12
                  recorder.Increment("a", "1", 5)});               // a retry: answered, not redone
  recorder.Batch(kStart + absl::Seconds(90), {recorder.Increment("b", "2", 1)});  // both alarms ring
  recorder.Batch(kStart + absl::Seconds(95), {recorder.Increment("a", "4", 1)});
  return recorder;
}

CounterEvent EventAt(const RecordedLog& log, size_t index) {
  CounterEvent event;
  EXPECT_TRUE(event.ParseFromString(log.events.at(0)[index].value));
  return event;
}

TEST(ReplayTest, AFaithfulLogComesOutTheSame) {
  Recorder recorder = AnEveningOfCounting();
  ASSERT_EQ(recorder.log().events.at(0).size(), 8u);
  ReplayReport report = Replay(recorder.log());
  EXPECT_TRUE(report.divergences.empty()) << report.divergences[0].what;
  EXPECT_EQ(report.events_reproduced, 8);
  EXPECT_EQ(report.commands, 8);
  EXPECT_EQ(report.timers, 1) << "both alarms rang in one batch";
  EXPECT_EQ(report.events_applied_unchecked, 0);
}

TEST(ReplayTest, AChangedFieldIsReportedAtItsEvent) {
  Recorder recorder = AnEveningOfCounting();
  CounterEvent event = EventAt(recorder.log(), 4);
  ASSERT_TRUE(event.has_incremented());
  event.mutable_incremented()->set_total(event.incremented().total() + 1);
  recorder.log().events[0][4].value = event.SerializeAsString();
  ReplayReport report = Replay(recorder.log());
  ASSERT_EQ(report.divergences.size(), 1u);
  EXPECT_EQ(report.divergences[0].offset, 4);
  EXPECT_EQ(report.divergences[0].aggregate_id, "b");
  EXPECT_EQ(report.divergences[0].command_id, "b/2");
  EXPECT_NE(report.divergences[0].what.find("total"), std::string::npos) << report.divergences[0].what;
  EXPECT_EQ(report.events_reproduced, 4) << "everything before it was checked";
}

TEST(ReplayTest, AnotherTimeIsADifference) {
  Recorder recorder = AnEveningOfCounting();
  CounterEvent rang = EventAt(recorder.log(), 5);
  ASSERT_TRUE(rang.has_alarm_rang());
  *rang.mutable_alarm_rang()->mutable_rang_at() = ToProtoTime(kStart + absl::Seconds(91));
  recorder.log().events[0][5].value = rang.SerializeAsString();
  ReplayReport report = Replay(recorder.log());
  ASSERT_EQ(report.divergences.size(), 1u);
  EXPECT_EQ(report.divergences[0].offset, 5);
  EXPECT_NE(report.divergences[0].what.find("rang_at"), std::string::npos) << report.divergences[0].what;
}

TEST(ReplayTest, AMissingTimerEventAndAnExtraEventAreDifferences) {
  Recorder missing = AnEveningOfCounting();
  missing.log().events[0].erase(missing.log().events[0].begin() + 6);  // c's alarm
  for (size_t i = 6; i < missing.log().events[0].size(); ++i) missing.log().events[0][i].offset = i;
  ReplayReport report = Replay(missing.log());
  ASSERT_EQ(report.divergences.size(), 1u);
  EXPECT_NE(report.divergences[0].what.find("2 events where the record has 1"), std::string::npos)
      << report.divergences[0].what;

  Recorder refused_but_recorded = AnEveningOfCounting();
  // The refused command (a/3) rewritten to one that fits: the record has no
  // event of it, re-deciding writes one.
  CounterCommand fits = refused_but_recorded.Increment("a", "3", 1, /*limit=*/12);
  refused_but_recorded.log().commands[0][4].value = fits.SerializeAsString();
  report = Replay(refused_but_recorded.log());
  ASSERT_EQ(report.divergences.size(), 1u);
  EXPECT_EQ(report.divergences[0].command_id, "a/3");
  EXPECT_NE(report.divergences[0].what.find("1 events where the record has 0"), std::string::npos)
      << report.divergences[0].what;
}

TEST(ReplayTest, EventsOfCommandsNoLongerHeldAreAppliedAndTheRestChecked) {
  Recorder recorder = AnEveningOfCounting();
  // The commands topic's retention took the first batch.
  auto& commands = recorder.log().commands[0];
  commands.erase(commands.begin(), commands.begin() + 4);
  ReplayReport report = Replay(recorder.log());
  EXPECT_TRUE(report.divergences.empty()) << report.divergences[0].what;
  EXPECT_EQ(report.events_applied_unchecked, 4);
  EXPECT_EQ(report.events_reproduced, 4);
}

}  // namespace
}  // namespace helpline::replay
