#include "services/sessions/domain/reactions.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::sessions {

std::vector<v1::SessionsCommand> SessionsFromMatching(const matching::v1::MatchingEvent& event,
                                                      const SessionWindows& windows) {
  v1::SessionsCommand command;
  switch (event.body_case()) {
    case matching::v1::MatchingEvent::kMatchMade: {
      const matching::v1::Match& match = event.match_made().match();
      command.mutable_meta()->set_aggregate_id(match.match_id());
      v1::CreateSession& create = *command.mutable_create_session();
      create.set_kind(v1::SESSION_KIND_HELP_NOW);
      create.set_person_id(match.person_id());
      create.set_expert_id(match.expert_id());
      *create.mutable_price() = match.price();
      create.set_max_minutes(match.max_minutes());
      *create.mutable_max_amount() = match.max_amount();
      create.set_sponsor_program_id(match.sponsor_program_id());
      create.set_category_id(match.category_id());
      *create.mutable_join_window() = ToProtoDuration(windows.help_now_join_window);
      *create.mutable_grace_period() = ToProtoDuration(windows.grace_period);
      create.set_connection_source(windows.connection_source);
      return {command};
    }
    case matching::v1::MatchingEvent::kBookingConfirmed: {
      const matching::v1::Booking& booking = event.booking_confirmed().booking();
      command.mutable_meta()->set_aggregate_id(booking.booking_id());
      v1::CreateSession& create = *command.mutable_create_session();
      create.set_kind(v1::SESSION_KIND_BOOKED);
      create.set_person_id(booking.person_id());
      create.set_expert_id(booking.expert_id());
      *create.mutable_price() = booking.price();
      create.set_max_minutes(booking.max_minutes());
      *create.mutable_max_amount() = booking.max_amount();
      create.set_sponsor_program_id(booking.sponsor_program_id());
      *create.mutable_scheduled_start() = booking.start();
      *create.mutable_join_window() = ToProtoDuration(windows.booked_join_window);
      *create.mutable_grace_period() = ToProtoDuration(windows.grace_period);
      create.set_connection_source(windows.connection_source);
      return {command};
    }
    case matching::v1::MatchingEvent::kBookingCancelled: {
      command.mutable_meta()->set_aggregate_id(event.booking_cancelled().booking_id());
      command.mutable_cancel_session()->set_reason(
          absl::StrCat("the booking was cancelled by the ", event.booking_cancelled().cancelled_by()));
      return {command};
    }
    default:
      return {};
  }
}

std::vector<v1::SessionsCommand> SessionsFromPayments(const payments::v1::PaymentsEvent& event) {
  if (!event.has_hold_failed()) return {};
  v1::SessionsCommand command;
  command.mutable_meta()->set_aggregate_id(event.hold_failed().session_id());
  command.mutable_cancel_session()->set_reason(event.hold_failed().reason());
  command.mutable_cancel_session()->set_payment_failed(true);
  return {command};
}

}  // namespace helpline::sessions
