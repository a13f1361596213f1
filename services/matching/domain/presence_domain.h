#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "helpline/matching/v1/events.pb.h"
#include "services/runtime/eventsourcing/domain.h"

// Matching's aggregates, decided and applied purely. So far an expert's
// presence (id: kPresencePrefix + user id): what Redis says, as transitions.
namespace helpline::matching {

inline constexpr char kPresencePrefix[] = "presence:";

std::string PresenceId(const std::string& expert_id);
// The expert's user id, or empty if `aggregate_id` is not a presence id.
std::string ExpertOfPresence(const std::string& aggregate_id);

struct MatchingDomain {
  using Command = helpline::matching::v1::MatchingCommand;
  using Event = helpline::matching::v1::MatchingEvent;
  using State = helpline::matching::v1::MatchingState;

  static absl::StatusOr<std::vector<Event>> Decide(const State& state, const Command& command,
                                                   const es::DecideContext& context);
  static void Apply(State& state, const Event& event);
};

inline const es::AggregateType& MatchingType() {
  static const es::TypedAggregate<MatchingDomain> type;
  return type;
}

}  // namespace helpline::matching
