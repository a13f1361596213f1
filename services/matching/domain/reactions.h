#pragma once

#include <functional>
#include <string>
#include <vector>

#include "helpline/identity/v1/events.pb.h"
#include "helpline/matching/v1/commands.pb.h"
#include "helpline/sessions/v1/events.pb.h"

namespace helpline::matching {

// A booked session cancelled because the person's payment hold failed gives
// its slot back: the booking is cancelled on the expert's calendar.
std::vector<v1::MatchingCommand> MatchingFromSessions(const sessions::v1::SessionsEvent& event);

// What an account deleted in identity had waiting in matching ends: its open
// help requests and its bookings still to come, as person or as expert, are
// cancelled by the platform (no fee; the sessions and holds follow).
struct AccountLookups {
  std::function<std::vector<std::string>(const std::string& person_id)> open_requests_of;
  std::function<std::vector<v1::Booking>(const std::string& user_id)> bookings_of;
};
std::vector<v1::MatchingCommand> MatchingFromIdentity(const identity::v1::IdentityEvent& event,
                                                      const AccountLookups& lookups);

}  // namespace helpline::matching
