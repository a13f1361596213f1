#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/matching/v1/matching.pb.h"

// Part of matching's read model (read_model.h), not thread-safe on its own:
// the bookings, and each user's, as person and as expert.
namespace helpline::matching {

class BookingsView {
 public:
  // BookingConfirmed and BookingCancelled; other events change nothing.
  void Apply(const v1::MatchingEvent& event);

  std::optional<v1::Booking> Booking(const std::string& booking_id) const;
  // `user_id`'s bookings as person and as expert, soonest first; upcoming
  // confirmed ones only unless `all`.
  std::vector<v1::Booking> BookingsOf(const std::string& user_id, absl::Time now, bool all) const;

 private:
  absl::flat_hash_map<std::string, v1::Booking> bookings_;
  absl::flat_hash_map<std::string, std::vector<std::string>> bookings_of_;
};

}  // namespace helpline::matching
