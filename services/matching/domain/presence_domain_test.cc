#include "services/matching/domain/matching_domain.h"

#include "gtest/gtest.h"
#include "services/runtime/core/errors.h"

namespace helpline::matching {
namespace {

const std::string kExpert = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

// Decides and applies like the processor, in memory.
class Presence {
 public:
  std::vector<v1::MatchingEvent> Record(v1::PresenceStatus status, int64_t sequence) {
    v1::MatchingCommand command;
    command.mutable_record_presence()->set_status(status);
    command.mutable_record_presence()->set_sequence(sequence);
    return Run(command);
  }
  std::vector<v1::MatchingEvent> Offline(int64_t sequence) {
    v1::MatchingCommand command;
    command.mutable_mark_offline()->set_sequence(sequence);
    return Run(command);
  }
  absl::Status last_status;
  v1::MatchingState state;

 private:
  std::vector<v1::MatchingEvent> Run(const v1::MatchingCommand& command) {
    es::DecideContext context{absl::Now(), PresenceId(kExpert), version_, &command.meta()};
    auto events = MatchingDomain::Decide(state, command, context);
    last_status = events.status();
    if (!events.ok()) return {};
    for (v1::MatchingEvent& event : *events) {
      event.mutable_meta()->set_aggregate_id(PresenceId(kExpert));
      MatchingDomain::Apply(state, event);
      ++version_;
    }
    return *events;
  }
  int64_t version_ = 0;
};

TEST(PresenceDomain, OnlineStatusChangesAndOffline) {
  Presence presence;
  auto events = presence.Record(v1::PRESENCE_STATUS_AVAILABLE, 1);
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].has_expert_went_online());
  EXPECT_EQ(events[0].expert_went_online().expert_id(), kExpert);
  events = presence.Record(v1::PRESENCE_STATUS_BUSY, 2);
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].has_expert_status_changed());
  EXPECT_EQ(events[0].expert_status_changed().previous_status(), v1::PRESENCE_STATUS_AVAILABLE);
  events = presence.Offline(3);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].has_expert_went_offline());
  EXPECT_TRUE(presence.Offline(4).empty()) << "offline twice is one transition";
  events = presence.Record(v1::PRESENCE_STATUS_AVAILABLE, 5);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].has_expert_went_online());
}

TEST(PresenceDomain, StaleChangesArriveLateAndChangeNothing) {
  Presence presence;
  presence.Record(v1::PRESENCE_STATUS_AVAILABLE, 1);
  presence.Offline(2);
  presence.Record(v1::PRESENCE_STATUS_AVAILABLE, 3);
  // The sweep's offline from before the heartbeat, delivered after it.
  EXPECT_TRUE(presence.Offline(2).empty());
  EXPECT_TRUE(presence.Record(v1::PRESENCE_STATUS_BUSY, 1).empty());
  EXPECT_EQ(presence.state.presence().status(), v1::PRESENCE_STATUS_AVAILABLE);
}

TEST(PresenceDomain, AHeartbeatCannotSayOffline) {
  Presence presence;
  presence.Record(v1::PRESENCE_STATUS_OFFLINE, 1);
  ASSERT_EQ(presence.last_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(errors::FieldViolations(presence.last_status)[0].field, "record_presence.status");
}

}  // namespace
}  // namespace helpline::matching
