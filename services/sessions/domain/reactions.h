#pragma once

#include <vector>

#include "absl/time/time.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/sessions/v1/commands.pb.h"

namespace helpline::sessions {

struct SessionWindows {
  // Both must join within this: from the match (help now) or from the
  // slot's start (booked).
  absl::Duration help_now_join_window = absl::Minutes(3);
  absl::Duration booked_join_window = absl::Minutes(10);
  // A dropped participant's time to come back.
  absl::Duration grace_period = absl::Minutes(2);
  // Who reports connections for new sessions.
  v1::ConnectionSource connection_source = v1::CONNECTION_SOURCE_APPS;
};

// Matching's MatchMade and BookingConfirmed create a session (id: the match
// or booking id); BookingCancelled cancels it. Pure.
std::vector<v1::SessionsCommand> SessionsFromMatching(const matching::v1::MatchingEvent& event,
                                                      const SessionWindows& windows);
// Payments' HoldFailed (the card or the sponsor's budget refused the hold)
// cancels the session, or ends it if it is under way. Pure.
std::vector<v1::SessionsCommand> SessionsFromPayments(const payments::v1::PaymentsEvent& event);

}  // namespace helpline::sessions
