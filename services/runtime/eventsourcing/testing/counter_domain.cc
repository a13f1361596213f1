#include "services/runtime/eventsourcing/testing/counter_domain.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/core/errors.h"

namespace helpline::es::testing {

absl::StatusOr<std::vector<CounterDomain::Event>> CounterDomain::Decide(
    const State& state, const Command& command, const DecideContext& context) {
  Event event;
  switch (command.body_case()) {
    case Command::kIncrement: {
      const auto& increment = command.increment();
      errors::Validator validator;
      validator.Check(increment.by() >= 1 && increment.by() <= 1000, "increment.by",
                      "must be between 1 and 1000");
      validator.Check(increment.limit() >= 0, "increment.limit", "must not be negative");
      if (absl::Status s = validator.Finish(); !s.ok()) return s;
      if (increment.limit() > 0 && state.total() + increment.by() > increment.limit()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the counter is at ", state.total(), "; adding ", increment.by(),
            " would pass the limit ", increment.limit()));
      }
      auto* incremented = event.mutable_incremented();
      incremented->set_by(increment.by());
      incremented->set_total(state.total() + increment.by());
      incremented->set_padding(increment.padding());
      break;
    }
    case Command::kScheduleAlarm:
      if (!command.schedule_alarm().has_at()) {
        return errors::InvalidField("schedule_alarm.at", "is required");
      }
      *event.mutable_alarm_scheduled()->mutable_at() = command.schedule_alarm().at();
      break;
    case Command::kRingAlarm:
      if (!state.has_alarm_at() || FromProtoTime(state.alarm_at()) != FromProtoTime(command.ring_alarm().due())) {
        return absl::FailedPreconditionError("no alarm is due at that time");
      }
      *event.mutable_alarm_rang()->mutable_due() = command.ring_alarm().due();
      *event.mutable_alarm_rang()->mutable_rang_at() = ToProtoTime(context.now);
      break;
    case Command::BODY_NOT_SET:
      return errors::InvalidField("body", "one of increment, schedule_alarm is required");
  }
  return std::vector<Event>{std::move(event)};
}

void CounterDomain::Apply(State& state, const Event& event) {
  switch (event.body_case()) {
    case Event::kIncremented:
      state.set_total(event.incremented().total());
      break;
    case Event::kAlarmScheduled:
      *state.mutable_alarm_at() = event.alarm_scheduled().at();
      break;
    case Event::kAlarmRang:
      state.clear_alarm_at();
      state.set_rings(state.rings() + 1);
      break;
    case Event::BODY_NOT_SET:
      break;
  }
}

std::optional<absl::Time> CounterDomain::NextDeadline(const State& state) {
  if (!state.has_alarm_at()) return std::nullopt;
  return FromProtoTime(state.alarm_at());
}

CounterDomain::Command CounterDomain::OnDeadline(const State& state, absl::Time due) {
  Command command;
  *command.mutable_ring_alarm()->mutable_due() = ToProtoTime(due);
  return command;
}

}  // namespace helpline::es::testing
