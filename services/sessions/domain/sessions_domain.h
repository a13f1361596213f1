#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/sessions/v1/commands.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "helpline/sessions/v1/state.pb.h"
#include "services/runtime/eventsourcing/domain.h"

// A session (id: the match id or booking id), decided and applied purely.
// Connection times are the front's clock when Join/Leave arrived, carried in
// the commands; timers (join window, grace period, time cap) fire as Tick.
namespace helpline::sessions {

struct SessionsDomain {
  using Command = helpline::sessions::v1::SessionsCommand;
  using Event = helpline::sessions::v1::SessionsEvent;
  using State = helpline::sessions::v1::SessionState;

  static absl::StatusOr<std::vector<Event>> Decide(const State& state, const Command& command,
                                                   const es::DecideContext& context);
  static void Apply(State& state, const Event& event);
  static std::optional<absl::Time> NextDeadline(const State& state);
  static Command OnDeadline(const State& state, absl::Time due);
};

inline const es::AggregateType& SessionsType() {
  static const es::TypedAggregate<SessionsDomain> type;
  return type;
}

// ENDED, CANCELLED or NO_SHOW: nobody joins it any more.
bool SessionIsOver(v1::SessionStatus status);

// What `billable` time costs at `price` for a session capped at
// `max_minutes`: per minute, started minutes but at least the minimum;
// fixed, the price. Nothing billable costs nothing.
v1::Billing BillFor(const catalog::v1::PriceTerms& price, absl::Duration billable,
                    int max_minutes);

}  // namespace helpline::sessions
