#pragma once

#include <vector>

#include "helpline/matching/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"

namespace helpline::matching {

// A booked session cancelled because the person's payment hold failed gives
// its slot back: the booking is cancelled on the expert's calendar.
std::vector<v1::MatchingCommand> MatchingFromSessions(const sessions::v1::SessionsEvent& event);

}  // namespace helpline::matching
