#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/state.pb.h"
#include "services/payments/domain/money_moves.h"

// Sponsors' programs and budgets (docs/architecture.md §6): which program a
// sponsored session is paid from, and the money a sponsor pays in.
namespace helpline::payments {

absl::StatusOr<Events> DecideRecordSponsorProgram(const v1::PaymentsState& state,
                                                  const v1::RecordSponsorProgram& program);
absl::StatusOr<Events> DecideFundSponsorBudget(const v1::PaymentsState& state,
                                               const v1::FundSponsorBudget& fund,
                                               const std::string& currency);

// The processor charged a sponsor: the money goes into its budget.
Events FundBudget(const v1::PaymentsState& state, const v1::ProcessorIntentRecorded& intent,
                  absl::Time now);

}  // namespace helpline::payments
