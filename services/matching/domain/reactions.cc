#include "services/matching/domain/reactions.h"

#include "services/matching/domain/matching_domain.h"

namespace helpline::matching {

std::vector<v1::MatchingCommand> MatchingFromSessions(const sessions::v1::SessionsEvent& event) {
  if (!event.has_session_cancelled()) return {};
  const sessions::v1::SessionCancelled& cancelled = event.session_cancelled();
  if (!cancelled.payment_failed() || cancelled.kind() != sessions::v1::SESSION_KIND_BOOKED ||
      cancelled.expert_id().empty()) {
    return {};
  }
  v1::MatchingCommand command;
  command.mutable_meta()->set_aggregate_id(CalendarId(cancelled.expert_id()));
  // A booked session's id is its booking's.
  command.mutable_cancel_booking()->set_booking_id(event.meta().aggregate_id());
  command.mutable_cancel_booking()->set_reason(cancelled.reason());
  command.mutable_cancel_booking()->set_payment_failed(true);
  return {command};
}

std::vector<v1::MatchingCommand> MatchingFromIdentity(const identity::v1::IdentityEvent& event,
                                                      const AccountLookups& lookups) {
  if (!event.has_account_deleted()) return {};
  const std::string& user_id = event.meta().aggregate_id();
  std::vector<v1::MatchingCommand> commands;
  for (const std::string& request_id : lookups.open_requests_of(user_id)) {
    v1::MatchingCommand cancel;
    cancel.mutable_meta()->set_aggregate_id(HelpRequestAggregate(request_id));
    cancel.mutable_cancel_help_request()->set_account_deleted(true);
    commands.push_back(std::move(cancel));
  }
  for (const v1::Booking& booking : lookups.bookings_of(user_id)) {
    v1::MatchingCommand cancel;
    cancel.mutable_meta()->set_aggregate_id(CalendarId(booking.expert_id()));
    v1::CancelBooking& body = *cancel.mutable_cancel_booking();
    body.set_booking_id(booking.booking_id());
    body.set_account_deleted(true);
    body.set_reason(booking.expert_id() == user_id ? "the expert's account was deleted"
                                                   : "the person's account was deleted");
    commands.push_back(std::move(cancel));
  }
  return commands;
}

}  // namespace helpline::matching
