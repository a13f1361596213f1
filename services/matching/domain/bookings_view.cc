#include "services/matching/domain/bookings_view.h"

#include <algorithm>

#include "services/runtime/core/proto_time.h"

namespace helpline::matching {

void BookingsView::Apply(const v1::MatchingEvent& event) {
  if (event.has_booking_confirmed()) {
    const v1::Booking& booking = event.booking_confirmed().booking();
    auto [it, added] = bookings_.try_emplace(booking.booking_id(), booking);
    if (!added) return;
    bookings_of_[booking.person_id()].push_back(booking.booking_id());
    bookings_of_[booking.expert_id()].push_back(booking.booking_id());
  } else if (event.has_booking_cancelled()) {
    const v1::BookingCancelled& cancelled = event.booking_cancelled();
    auto found = bookings_.find(cancelled.booking_id());
    if (found == bookings_.end()) return;
    found->second.set_status(v1::BOOKING_STATUS_CANCELLED);
    found->second.set_cancelled_by(cancelled.cancelled_by());
    found->second.set_late_cancellation(cancelled.late());
    found->second.set_cancel_reason(cancelled.reason());
  }
}

std::optional<v1::Booking> BookingsView::Booking(const std::string& booking_id) const {
  auto found = bookings_.find(booking_id);
  if (found == bookings_.end()) return std::nullopt;
  return found->second;
}

std::vector<v1::Booking> BookingsView::BookingsOf(const std::string& user_id, absl::Time now,
                                                  bool all) const {
  std::vector<v1::Booking> out;
  auto ids = bookings_of_.find(user_id);
  if (ids == bookings_of_.end()) return out;
  for (const std::string& id : ids->second) {
    const v1::Booking& booking = bookings_.at(id);
    if (!all && (booking.status() != v1::BOOKING_STATUS_CONFIRMED ||
                 FromProtoTime(booking.end()) <= now)) {
      continue;
    }
    out.push_back(booking);
  }
  std::sort(out.begin(), out.end(), [](const v1::Booking& a, const v1::Booking& b) {
    absl::Time a_start = FromProtoTime(a.start()), b_start = FromProtoTime(b.start());
    return a_start != b_start ? a_start < b_start : a.booking_id() < b.booking_id();
  });
  return out;
}

}  // namespace helpline::matching
