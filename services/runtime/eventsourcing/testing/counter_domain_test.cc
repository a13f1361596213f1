#include "services/runtime/eventsourcing/testing/counter_domain.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/runtime/core/errors.h"

namespace helpline::es::testing {
namespace {

using ::testing::ElementsAre;
using Command = CounterDomain::Command;
using State = CounterDomain::State;

DecideContext Context(absl::Time now = absl::FromUnixSeconds(1800000000)) {
  DecideContext context;
  context.now = now;
  context.aggregate_id = "c1";
  return context;
}

Command Increment(int64_t by, int64_t limit = 0) {
  Command command;
  command.mutable_increment()->set_by(by);
  command.mutable_increment()->set_limit(limit);
  return command;
}

TEST(CounterDomainTest, IncrementAddsToTheTotal) {
  State state;
  state.set_total(5);
  auto events = CounterDomain::Decide(state, Increment(3), Context());
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].incremented().total(), 8);
  CounterDomain::Apply(state, (*events)[0]);
  EXPECT_EQ(state.total(), 8);
}

TEST(CounterDomainTest, BadInputNamesTheFields) {
  auto events = CounterDomain::Decide(State(), Increment(0, -1), Context());
  ASSERT_FALSE(events.ok());
  std::vector<std::string> fields;
  for (const auto& v : errors::FieldViolations(events.status())) fields.push_back(v.field);
  EXPECT_THAT(fields, ElementsAre("increment.by", "increment.limit"));
  EXPECT_EQ(CounterDomain::Decide(State(), Command(), Context()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CounterDomainTest, LimitIsAPrecondition) {
  State state;
  state.set_total(9);
  EXPECT_EQ(CounterDomain::Decide(state, Increment(2, 10), Context()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CounterDomainTest, AlarmIsATimerThatRingsOnce) {
  absl::Time at = absl::FromUnixSeconds(1800000100);
  State state;
  Command schedule;
  *schedule.mutable_schedule_alarm()->mutable_at() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(at));
  auto scheduled = CounterDomain::Decide(state, schedule, Context());
  ASSERT_TRUE(scheduled.ok());
  CounterDomain::Apply(state, (*scheduled)[0]);
  EXPECT_EQ(CounterDomain::NextDeadline(state), at);

  Command ring = CounterDomain::OnDeadline(state, at);
  auto rang = CounterDomain::Decide(state, ring, Context(at + absl::Seconds(1)));
  ASSERT_TRUE(rang.ok());
  CounterDomain::Apply(state, (*rang)[0]);
  EXPECT_EQ(state.rings(), 1);
  EXPECT_EQ(CounterDomain::NextDeadline(state), std::nullopt);
  EXPECT_EQ(CounterDomain::Decide(state, ring, Context()).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "a stale timer command is refused";
}

}  // namespace
}  // namespace helpline::es::testing
