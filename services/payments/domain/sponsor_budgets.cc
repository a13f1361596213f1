#include "services/payments/domain/sponsor_budgets.h"

#include "absl/strings/str_cat.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/errors.h"

namespace helpline::payments {

absl::StatusOr<Events> DecideRecordSponsorProgram(const v1::PaymentsState& state,
                                                  const v1::RecordSponsorProgram& program) {
  v1::PaymentsEvent event;
  v1::SponsorProgramRecorded& recorded = *event.mutable_sponsor_program_recorded();
  recorded.set_program_id(program.program_id());
  recorded.set_sponsor_id(program.sponsor_id());
  if (program.sponsor_id().empty()) {
    auto known = state.programs().find(program.program_id());
    if (known == state.programs().end()) {
      return errors::InvalidField("record_sponsor_program.sponsor_id", "is required");
    }
    recorded.set_sponsor_id(known->second.sponsor_id());
  }
  recorded.set_free_sessions_per_person(program.free_sessions_per_person());
  return Events{event};
}

absl::StatusOr<Events> DecideFundSponsorBudget(const v1::PaymentsState& state,
                                               const v1::FundSponsorBudget& fund,
                                               const std::string& currency) {
  if (fund.funding_id().empty() || fund.sponsor_id().empty()) {
    return errors::InvalidField("fund_sponsor_budget", "funding_id and sponsor_id are required");
  }
  if (fund.amount().currency_code() != currency || fund.amount().amount_minor() <= 0) {
    return errors::InvalidField("fund_sponsor_budget.amount",
                                absl::StrCat("must be a positive amount in ", currency));
  }
  if (IntentKnown(state, absl::StrCat("fund:", fund.funding_id()))) return Events{};
  return Events{Intent(absl::StrCat("fund:", fund.funding_id()), v1::INTENT_KIND_CHARGE,
                       fund.amount(), fund.sponsor_id())};
}

Events FundBudget(const v1::PaymentsState& state, const v1::ProcessorIntentRecorded& intent,
                  absl::Time now) {
  Attempt attempt(state);
  const std::string funding = intent.intent_id().substr(sizeof("fund:") - 1);
  if (!attempt.Take({Move(absl::StrCat("funding:", funding), kCashAccount,
                          SponsorBudget(intent.reference()), intent.amount().amount_minor(), 0,
                          absl::StrCat("funding:", funding))},
                    now)) {
    return {};
  }
  v1::PaymentsEvent funded;
  v1::SponsorBudgetFunded& done = *funded.mutable_sponsor_budget_funded();
  done.set_funding_id(funding);
  done.set_sponsor_id(intent.reference());
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  return {funded};
}

}  // namespace helpline::payments
