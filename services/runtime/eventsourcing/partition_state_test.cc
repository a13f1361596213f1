#include "services/runtime/eventsourcing/partition_state.h"

#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"

namespace helpline::es {
namespace {

using google::protobuf::util::TimeUtil;
using testing::CounterType;
using Event = testing::CounterDomain::Event;

Event Incremented(const std::string& aggregate, int64_t version, int64_t total,
                  const std::string& command_id, int64_t at_seconds = 1800000000) {
  Event event;
  event.mutable_meta()->set_aggregate_id(aggregate);
  event.mutable_meta()->set_aggregate_version(version);
  event.mutable_meta()->set_command_id(command_id);
  *event.mutable_meta()->mutable_occurred_at() = TimeUtil::SecondsToTimestamp(at_seconds);
  event.mutable_incremented()->set_by(1);
  event.mutable_incremented()->set_total(total);
  return event;
}

TEST(PartitionStateTest, ReplayRemembersCommandsAndVersions) {
  PartitionState state(CounterType(), absl::Hours(1));
  state.ApplyCommitted("a", Incremented("a", 1, 1, "cmd-1"), 10);
  state.ApplyCommitted("a", Incremented("a", 2, 2, "cmd-2"), 11);
  const AggregateRecord* a = state.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->version, 2);
  EXPECT_EQ(a->last_event_offset, 11);
  ASSERT_TRUE(a->handled_commands.contains("cmd-1"));
  EXPECT_EQ(a->handled_commands.at("cmd-1").version, 1);
  EXPECT_EQ(a->handled_commands.at("cmd-1").last_event_offset, 10);
}

TEST(PartitionStateTest, SnapshotPlusTailHasTheDigestOfAFullReplay) {
  PartitionState full(CounterType(), absl::Hours(1));
  PartitionState from_snapshot(CounterType(), absl::Hours(1));
  int64_t offset = 0;
  for (int v = 1; v <= 50; ++v) {
    for (const char* id : {"a", "b", "c"}) {
      full.ApplyCommitted(id, Incremented(id, v, v, std::string(id) + std::to_string(v), 1800000000 + v * 60), offset++);
    }
    if (v == 30) {
      for (const char* id : {"a", "b", "c"}) from_snapshot.LoadSnapshot(full.ToSnapshot(id));
    }
  }
  offset = 90;
  for (int v = 31; v <= 50; ++v) {
    for (const char* id : {"a", "b", "c"}) {
      from_snapshot.ApplyCommitted(id, Incremented(id, v, v, std::string(id) + std::to_string(v), 1800000000 + v * 60), offset++);
    }
  }
  EXPECT_EQ(full.Digest(), from_snapshot.Digest());
  // Something real is compared: one more event makes them differ.
  from_snapshot.ApplyCommitted("a", Incremented("a", 51, 51, "a51"), offset);
  EXPECT_NE(full.Digest(), from_snapshot.Digest());
}

TEST(PartitionStateTest, ReplayFromBeforeARecordSkipsWhatItHas) {
  // A snapshot written in chunks: a record may be newer than the snapshot's
  // events offset. Replaying from that offset must not apply its events twice.
  PartitionState full(CounterType(), absl::Hours(1));
  PartitionState recovered(CounterType(), absl::Hours(1));
  for (int v = 1; v <= 50; ++v) {
    full.ApplyCommitted("a", Incremented("a", v, v, "a" + std::to_string(v)), v);
    if (v == 40) recovered.LoadSnapshot(full.ToSnapshot("a"));
  }
  for (int v = 30; v <= 50; ++v) {  // the snapshot's offset was that of version 30
    recovered.ApplyCommitted("a", Incremented("a", v, v, "a" + std::to_string(v)), v);
  }
  EXPECT_EQ(recovered.Find("a")->version, 50);
  EXPECT_EQ(full.Digest(), recovered.Digest());
}

TEST(PartitionStateTest, OldCommandIdsAreForgottenAfterTheWindow) {
  PartitionState state(CounterType(), absl::Minutes(10));
  for (int v = 1; v <= 100; ++v) {
    state.ApplyCommitted("a", Incremented("a", v, v, "cmd-" + std::to_string(v), 1800000000 + v * 60), v);
  }
  const AggregateRecord* a = state.Find("a");
  EXPECT_FALSE(a->handled_commands.contains("cmd-1"));
  EXPECT_TRUE(a->handled_commands.contains("cmd-100"));
  EXPECT_LE(a->handled_commands.size(), 64u) << "pruning keeps memory bounded";
  // cmd-90 .. cmd-100 are within 10 minutes of the newest.
  EXPECT_EQ(state.ToSnapshot("a").handled_commands_size(), 11);
}

// Payments keeps its ledger in one aggregate per currency: thousands of
// commands a day. A retry must still be recognised anywhere in the window.
TEST(PartitionStateTest, AHotAggregateRemembersEveryCommandOfItsWindow) {
  PartitionState live(CounterType(), absl::Hours(24));
  PartitionState from_snapshot(CounterType(), absl::Hours(24));
  constexpr int kCommands = 25000;  // one every 3 s: 21 hours
  for (int v = 1; v <= kCommands; ++v) {
    Event event = Incremented("ledger", v, v, "cmd-" + std::to_string(v), 1800000000 + 3 * v);
    live.ApplyCommitted("ledger", event, v);
    if (v == kCommands / 2) from_snapshot.LoadSnapshot(live.ToSnapshot("ledger"));
    if (v > kCommands / 2) from_snapshot.ApplyCommitted("ledger", event, v);
  }
  for (PartitionState* state : {&live, &from_snapshot}) {
    WorkingAggregate ledger = state->Checkout("ledger");
    const HandledCommand* first = ledger.FindHandled("cmd-1");
    ASSERT_NE(first, nullptr) << "the first command of the window is still known";
    EXPECT_EQ(first->version, 1);
    EXPECT_NE(ledger.FindHandled("cmd-12345"), nullptr);
  }
  EXPECT_EQ(live.ToSnapshot("ledger").handled_commands_size(), kCommands);
  EXPECT_EQ(live.Digest(), from_snapshot.Digest());
  // Eight hours more: the first five hours' commands fall out of the window.
  for (int v = kCommands + 1; v <= kCommands + 10000; ++v) {
    live.ApplyCommitted("ledger", Incremented("ledger", v, v, "cmd-" + std::to_string(v),
                                              1800000000 + 3 * v), v);
  }
  WorkingAggregate ledger = live.Checkout("ledger");
  EXPECT_EQ(ledger.FindHandled("cmd-1"), nullptr);
  EXPECT_EQ(ledger.FindHandled("cmd-6000"), nullptr);
  EXPECT_NE(ledger.FindHandled("cmd-6300"), nullptr) << "still within 24 h of the newest";
  EXPECT_LE(live.Find("ledger")->handled_commands.size(), 28800u * 9 / 8)
      << "pruned to the window and an eighth: 24 h at one command every 3 s";
}

// A batch decides against a working copy; committed or thrown away (an
// aborted transaction), the next batch's copy equals the committed state,
// whether it is the spare or a fresh clone.
TEST(PartitionStateTest, WorkingCopiesEqualTheCommittedStateAfterCommitsAndAborts) {
  PartitionState state(CounterType(), absl::Hours(1));
  state.ApplyCommitted("a", Incremented("a", 1, 1, "cmd-1"), 0);
  auto total = [](const WorkingAggregate& working) {
    return static_cast<const testing::CounterDomain::State&>(*working.state).total();
  };
  auto committed_total = [&] {
    return static_cast<const testing::CounterDomain::State&>(*state.Find("a")->state).total();
  };
  for (int64_t v = 2; v <= 6; ++v) {
    WorkingAggregate working = state.Checkout("a");
    ASSERT_EQ(total(working), committed_total()) << "checkout before version " << v;
    auto event = std::make_unique<Event>(
        Incremented("a", v, total(working) + 1, "cmd-" + std::to_string(v)));
    ApplyEvent(CounterType(), *event, -1, *working.state, working.version,
               working.last_event_offset, working.new_handled);
    working.events.push_back(std::move(event));
    if (v == 4) continue;  // aborted: thrown away, the committed state stays
    state.DropSpares();
    state.Commit("a", std::move(working));
    EXPECT_NE(state.Find("a")->spare, nullptr) << "the replaced state became the spare";
  }
  EXPECT_EQ(committed_total(), 5) << "five increments committed, one aborted";
  EXPECT_EQ(total(state.Checkout("a")), 5);
  state.DropSpares();
  EXPECT_EQ(state.Find("a")->spare, nullptr);
}

TEST(PartitionStateTest, TimersComeDueInOrder) {
  PartitionState state(CounterType(), absl::Hours(1));
  for (auto [id, at] : std::vector<std::pair<std::string, int64_t>>{{"late", 300}, {"early", 100}, {"mid", 200}}) {
    Event scheduled;
    scheduled.mutable_meta()->set_aggregate_version(1);
    *scheduled.mutable_alarm_scheduled()->mutable_at() = TimeUtil::SecondsToTimestamp(at);
    state.ApplyCommitted(id, scheduled, 0);
  }
  EXPECT_EQ(state.NextTimer(), absl::FromUnixSeconds(100));
  EXPECT_EQ(state.DueTimers(absl::FromUnixSeconds(250), 10), (std::vector<std::string>{"early", "mid"}));
  EXPECT_EQ(state.DueTimers(absl::FromUnixSeconds(250), 1), (std::vector<std::string>{"early"}));
  EXPECT_TRUE(state.DueTimers(absl::FromUnixSeconds(99), 10).empty());
}

TEST(RecordHeadersTest, CloudEventsAndTraceContext) {
  Event event = Incremented("agg-1", 3, 3, "cmd");
  event.mutable_meta()->set_event_id("0195f3c2-7b1e-7cc0-9a55-3f1d2e4b5a60");
  std::string parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::vector<kafka::Header> headers = EventHeaders(event.meta(), event, "helpline/counter",
                                                    NewTraceparent(parent));
  std::map<std::string, std::string> by_key;
  for (const auto& h : headers) by_key[h.key] = h.value;
  EXPECT_EQ(by_key["ce_type"], "helpline.testing.v1.Incremented");
  EXPECT_EQ(by_key["ce_id"], "0195f3c2-7b1e-7cc0-9a55-3f1d2e4b5a60");
  EXPECT_EQ(by_key["ce_subject"], "agg-1");
  EXPECT_EQ(by_key["ce_source"], "helpline/counter");
  EXPECT_EQ(by_key["ce_specversion"], "1.0");
  EXPECT_EQ(by_key["content-type"], "application/protobuf");
  EXPECT_EQ(by_key["ce_time"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(TraceIdOf(by_key["traceparent"]), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(by_key["traceparent"], parent) << "a new span in the same trace";
  EXPECT_EQ(TraceIdOf("garbage"), "");
  EXPECT_EQ(TraceIdOf(NewTraceparent()).size(), 32u);
}

}  // namespace
}  // namespace helpline::es
