#include "absl/strings/str_cat.h"
#include "services/matching/domain/matching_domain.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

// An expert's calendar: the single writer of the expert's bookings, so two
// bookings never overlap however many people book at once. The front has
// checked the slot against the expert's availability and price terms.
namespace helpline::matching {
namespace {

using v1::MatchingCommand;
using v1::MatchingEvent;
using Events = std::vector<MatchingEvent>;

// Bookings that ended this long before a new one are dropped from the state.
constexpr absl::Duration kKeepEnded = absl::Hours(24 * 7);
// A command without the front's setting (from a front older than the cap).
constexpr int kDefaultOpenBookingsPerPerson = 3;

std::string Actor(const es::DecideContext& context) {
  return context.meta == nullptr ? "" : context.meta->actor().user_id();
}

absl::StatusOr<Events> Book(const v1::CalendarState& calendar, const std::string& expert_id,
                            const v1::BookSlot& book, const es::DecideContext& context) {
  if (book.booking_id().empty() || book.person_id().empty()) {
    return errors::InvalidField("book_slot", "booking_id and person_id are required");
  }
  if (book.minutes() < 1) return errors::InvalidField("book_slot.minutes", "must be positive");
  if (calendar.bookings().contains(book.booking_id())) {
    return absl::AlreadyExistsError("this booking exists already");
  }
  if (book.person_id() == expert_id) {
    return absl::FailedPreconditionError("an expert does not book their own time");
  }
  absl::Time start = FromProtoTime(book.start());
  absl::Time end = start + absl::Minutes(book.minutes());
  absl::Duration notice = FromProtoDuration(book.minimum_notice());
  if (start < context.now + notice) {
    return absl::FailedPreconditionError(absl::StrCat(
        "start: must be at least ", absl::FormatDuration(notice), " from now"));
  }
  int open_of_person = 0;
  for (const auto& [id, other] : calendar.bookings()) {
    if (other.status() != v1::BOOKING_STATUS_CONFIRMED) continue;
    if (start < FromProtoTime(other.end()) && FromProtoTime(other.start()) < end) {
      return absl::FailedPreconditionError(
          "the expert has another booking at that time; pick another slot");
    }
    if (other.person_id() == book.person_id() && FromProtoTime(other.end()) > context.now) {
      ++open_of_person;
    }
  }
  const int max_open = book.max_open_per_person() > 0 ? book.max_open_per_person()
                                                      : kDefaultOpenBookingsPerPerson;
  if (open_of_person >= max_open) {
    return absl::FailedPreconditionError(
        absl::StrCat("you have ", open_of_person, " bookings with this expert still to come: at most ",
                     max_open, " at a time"));
  }
  MatchingEvent event;
  v1::Booking& booking = *event.mutable_booking_confirmed()->mutable_booking();
  booking.set_booking_id(book.booking_id());
  booking.set_expert_id(expert_id);
  booking.set_person_id(book.person_id());
  *booking.mutable_start() = book.start();
  *booking.mutable_end() = ToProtoTime(end);
  *booking.mutable_price() = book.price();
  booking.set_max_minutes(book.minutes());
  *booking.mutable_max_amount() = book.max_amount();
  booking.set_sponsor_program_id(book.sponsor_program_id());
  booking.set_note(book.note());
  booking.set_status(v1::BOOKING_STATUS_CONFIRMED);
  *booking.mutable_booked_at() = ToProtoTime(context.now);
  return Events{event};
}

absl::StatusOr<Events> Cancel(const v1::CalendarState& calendar, const std::string& expert_id,
                              const v1::CancelBooking& cancel, const es::DecideContext& context) {
  auto found = calendar.bookings().find(cancel.booking_id());
  const bool platform = es::SentByHelpline(context);
  const bool by_platform = cancel.payment_failed() || cancel.account_deleted();
  if (by_platform && !platform) {
    return absl::PermissionDeniedError(
        "only Helpline cancels a booking for a failed payment or a deleted account");
  }
  if (found == calendar.bookings().end()) {
    // A booking long over is forgotten: nothing left to give back.
    if (by_platform) return Events{};
    return absl::NotFoundError("no such booking");
  }
  const v1::Booking& booking = found->second;
  if (by_platform) {
    // The platform gives the slot back: the person's payment hold failed,
    // or the person or the expert is gone (a call under way is left to end).
    if (booking.status() != v1::BOOKING_STATUS_CONFIRMED) return Events{};
    if (!cancel.payment_failed() && context.now >= FromProtoTime(booking.start())) {
      return Events{};
    }
    MatchingEvent event;
    v1::BookingCancelled& cancelled = *event.mutable_booking_cancelled();
    cancelled.set_booking_id(booking.booking_id());
    cancelled.set_expert_id(expert_id);
    cancelled.set_person_id(booking.person_id());
    cancelled.set_cancelled_by("platform");
    cancelled.set_reason(cancel.reason());
    return Events{event};
  }
  const std::string actor = Actor(context);
  std::string by;
  if (actor == booking.person_id()) {
    by = "person";
  } else if (actor == expert_id) {
    by = "expert";
  } else {
    return absl::PermissionDeniedError("only the booking's person or expert can cancel it");
  }
  if (booking.status() != v1::BOOKING_STATUS_CONFIRMED) {
    return absl::FailedPreconditionError("the booking is cancelled already");
  }
  absl::Time start = FromProtoTime(booking.start());
  if (context.now >= start) {
    return absl::FailedPreconditionError("the booking has started; end the session instead");
  }
  MatchingEvent event;
  v1::BookingCancelled& cancelled = *event.mutable_booking_cancelled();
  cancelled.set_booking_id(booking.booking_id());
  cancelled.set_expert_id(expert_id);
  cancelled.set_person_id(booking.person_id());
  cancelled.set_cancelled_by(by);
  cancelled.set_late(by == "person" &&
                     context.now > start - FromProtoDuration(cancel.free_until_before()));
  return Events{event};
}

}  // namespace

absl::StatusOr<Events> DecideCalendar(const v1::CalendarState& calendar,
                                      const std::string& expert_id, const MatchingCommand& command,
                                      const es::DecideContext& context) {
  switch (command.body_case()) {
    case MatchingCommand::kBookSlot:
      return Book(calendar, expert_id, command.book_slot(), context);
    case MatchingCommand::kCancelBooking:
      return Cancel(calendar, expert_id, command.cancel_booking(), context);
    default:
      return errors::InvalidField("body", "this command is not for an expert's calendar");
  }
}

void ApplyCalendar(v1::CalendarState& calendar, const MatchingEvent& event) {
  switch (event.body_case()) {
    case MatchingEvent::kBookingConfirmed: {
      absl::Time now = FromProtoTime(event.meta().occurred_at());
      auto& bookings = *calendar.mutable_bookings();
      for (auto it = bookings.begin(); it != bookings.end();) {
        if (FromProtoTime(it->second.end()) + kKeepEnded < now) {
          it = bookings.erase(it);
        } else {
          ++it;
        }
      }
      const v1::Booking& booking = event.booking_confirmed().booking();
      bookings[booking.booking_id()] = booking;
      break;
    }
    case MatchingEvent::kBookingCancelled: {
      auto& bookings = *calendar.mutable_bookings();
      auto found = bookings.find(event.booking_cancelled().booking_id());
      if (found == bookings.end()) break;
      found->second.set_status(v1::BOOKING_STATUS_CANCELLED);
      found->second.set_cancelled_by(event.booking_cancelled().cancelled_by());
      found->second.set_late_cancellation(event.booking_cancelled().late());
      found->second.set_cancel_reason(event.booking_cancelled().reason());
      break;
    }
    default:
      break;
  }
}

}  // namespace helpline::matching
