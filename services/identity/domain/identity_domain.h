#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/identity/v1/commands.pb.h"
#include "helpline/identity/v1/events.pb.h"
#include "helpline/identity/v1/state.pb.h"
#include "services/runtime/eventsourcing/domain.h"

// Identity's two aggregates, decided and applied purely: a User, and an
// EmailClaim that lets one account at most hold an email.
namespace helpline::identity {

inline constexpr char kEmailClaimPrefix[] = "email:";
// A claim whose account never got created (a front died in between) can be
// taken over after this long.
inline constexpr absl::Duration kPendingClaimTimeout = absl::Minutes(10);
// Spent refresh-token hashes remembered per session, to detect reuse.
inline constexpr int kSpentHashesKept = 20;

bool IsEmailClaimId(const std::string& aggregate_id);

struct IdentityDomain {
  using Command = helpline::identity::v1::IdentityCommand;
  using Event = helpline::identity::v1::IdentityEvent;
  using State = helpline::identity::v1::IdentityState;

  static absl::StatusOr<std::vector<Event>> Decide(const State& state, const Command& command,
                                                   const es::DecideContext& context);
  static void Apply(State& state, const Event& event);
};

inline const es::AggregateType& IdentityType() {
  static const es::TypedAggregate<IdentityDomain> type;
  return type;
}

}  // namespace helpline::identity
