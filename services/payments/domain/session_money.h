#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/state.pb.h"
#include "services/payments/domain/money_moves.h"

// A session's money, from its hold to its capture, void or refund
// (docs/architecture.md §6): what each command about a session decides.
// A settlement that comes before the hold waits for it (SettlementQueued);
// a paid session's capture and refund wait for the processor's answer.
namespace helpline::payments {

// A match or booking: the sponsor's budget is reserved at once; a card is
// authorised first (an intent), and held when the processor says yes.
absl::StatusOr<Events> DecideHold(const v1::PaymentsState& state, const v1::HoldSession& hold,
                                  const std::string& currency, absl::Time now);
absl::StatusOr<Events> DecideCapture(const v1::PaymentsState& state,
                                     const v1::CaptureSession& capture, absl::Time now);
absl::StatusOr<Events> DecideLateCancellation(const v1::PaymentsState& state,
                                              const v1::ChargeLateCancellation& late,
                                              const std::string& currency, absl::Time now);
absl::StatusOr<Events> DecideVoid(const v1::PaymentsState& state,
                                  const v1::VoidSession& void_session, absl::Time now);
absl::StatusOr<Events> DecideRefund(const v1::PaymentsState& state,
                                    const v1::RefundSession& refund, absl::Time now);
absl::StatusOr<Events> DecideRetryRefund(const v1::PaymentsState& state,
                                         const v1::RetryRefund& retry, absl::Time now);

// The processor answered a session's authorisation, capture or refund:
// `events` (the answer's ProcessorOutcomeRecorded) and what follows.
absl::StatusOr<Events> DecideSessionOutcome(const v1::PaymentsState& state,
                                            const v1::ProcessorIntentRecorded& intent,
                                            const v1::RecordProcessorOutcome& outcome,
                                            Events events, absl::Time now);

// Applies an event about a session's money (HoldPlaced, SessionCaptured ...);
// others change nothing here.
void ApplyToSessionMoney(v1::PaymentsState& state, const v1::PaymentsEvent& event);

}  // namespace helpline::payments
