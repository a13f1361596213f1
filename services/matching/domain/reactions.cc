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

}  // namespace helpline::matching
