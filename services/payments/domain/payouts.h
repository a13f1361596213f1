#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/state.pb.h"
#include "services/payments/domain/money_moves.h"

// Experts' payouts (docs/architecture.md §6): what they may take out (their
// captured shares past the refund window), asked for by one expert or for
// all by the scheduled batch, held pending until the processor pays.
namespace helpline::payments {

absl::StatusOr<Events> DecideRequestPayout(const v1::PaymentsState& state,
                                           const v1::RequestPayout& request,
                                           const std::string& currency, absl::Time now);
absl::StatusOr<Events> DecideRunPayoutBatch(const v1::PaymentsState& state,
                                            const v1::RunPayoutBatch& batch,
                                            const std::string& currency, absl::Time now);

// The processor paid out (the pending transfer posts) or refused (voided:
// the money stays payable).
Events SettlePayout(const v1::PaymentsState& state, const v1::ProcessorIntentRecorded& intent,
                    const v1::RecordProcessorOutcome& outcome, absl::Time now);

// Applies PayoutStarted and PayoutSettled; others change nothing here.
void ApplyToPayouts(v1::PaymentsState& state, const v1::PaymentsEvent& event);

}  // namespace helpline::payments
