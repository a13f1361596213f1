#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/matching/v1/commands.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/matching/v1/state.pb.h"
#include "services/runtime/eventsourcing/domain.h"

// Matching's aggregates, decided and applied purely (proto/helpline/matching/v1/events.proto says what
// each one is): an expert's presence, a help request, an expert's calendar.
namespace helpline::matching {

inline constexpr char kPresencePrefix[] = "presence:";
inline constexpr char kHelpRequestPrefix[] = "help-request:";
inline constexpr char kCalendarPrefix[] = "calendar:";

std::string PresenceId(const std::string& expert_id);
std::string CalendarId(const std::string& expert_id);
// A help request's aggregate id from the id the API shows (a UUID), and back.
std::string HelpRequestAggregate(const std::string& help_request_id);
std::string HelpRequestOf(const std::string& aggregate_id);
// The expert's user id, or empty if `aggregate_id` is not that kind of id.
std::string ExpertOfPresence(const std::string& aggregate_id);
std::string ExpertOfCalendar(const std::string& aggregate_id);

struct MatchingDomain {
  using Command = helpline::matching::v1::MatchingCommand;
  using Event = helpline::matching::v1::MatchingEvent;
  using State = helpline::matching::v1::MatchingState;

  static absl::StatusOr<std::vector<Event>> Decide(const State& state, const Command& command,
                                                   const es::DecideContext& context);
  static void Apply(State& state, const Event& event);
  // A help request's open offer and its wait limit are timers.
  static std::optional<absl::Time> NextDeadline(const State& state);
  static Command OnDeadline(const State& state, absl::Time due);
};

inline const es::AggregateType& MatchingType() {
  static const es::TypedAggregate<MatchingDomain> type;
  return type;
}

// Each aggregate's rules (one file each).
absl::StatusOr<std::vector<v1::MatchingEvent>> DecidePresence(
    const v1::ExpertPresenceState& presence, const std::string& expert_id,
    const v1::MatchingCommand& command);
void ApplyPresence(v1::ExpertPresenceState& presence, const v1::MatchingEvent& event);

absl::StatusOr<std::vector<v1::MatchingEvent>> DecideHelpRequest(
    const v1::HelpRequestState& request, const v1::MatchingCommand& command,
    const es::DecideContext& context);
void ApplyHelpRequest(v1::HelpRequestState& request, const v1::MatchingEvent& event);

absl::StatusOr<std::vector<v1::MatchingEvent>> DecideCalendar(const v1::CalendarState& calendar,
                                                              const std::string& expert_id,
                                                              const v1::MatchingCommand& command,
                                                              const es::DecideContext& context);
void ApplyCalendar(v1::CalendarState& calendar, const v1::MatchingEvent& event);

}  // namespace helpline::matching
