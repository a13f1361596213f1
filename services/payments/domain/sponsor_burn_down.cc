#include "services/payments/domain/sponsor_burn_down.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

constexpr absl::Duration kPaceWindow = absl::Hours(24 * 7);

}  // namespace

void SponsorBurnDown::Spend(Sponsor& sponsor, absl::Time at, int64_t amount) {
  sponsor.spent_minor += amount;
  sponsor.spending.emplace_back(at, amount);
  while (!sponsor.spending.empty() && sponsor.spending.front().first < latest_ - kPaceWindow) {
    sponsor.spending.pop_front();
  }
}

void SponsorBurnDown::Release(const std::string& session_id) {
  auto hold = open_holds_.find(session_id);
  if (hold == open_holds_.end()) return;
  Program& program = programs_[hold->second.program_id];
  program.reserved_minor -= hold->second.reserved_minor;
  sponsors_[program.sponsor_id].reserved_minor -= hold->second.reserved_minor;
  open_holds_.erase(hold);
}

void SponsorBurnDown::Apply(const v1::PaymentsEvent& event) {
  const absl::Time at = FromProtoTime(event.meta().occurred_at());
  latest_ = std::max(latest_, at);
  switch (event.body_case()) {
    case v1::PaymentsEvent::kSponsorProgramRecorded: {
      const v1::SponsorProgramRecorded& recorded = event.sponsor_program_recorded();
      programs_[recorded.program_id()].sponsor_id = recorded.sponsor_id();
      sponsors_[recorded.sponsor_id()];
      break;
    }
    case v1::PaymentsEvent::kSponsorBudgetFunded: {
      const v1::SponsorBudgetFunded& funded = event.sponsor_budget_funded();
      Sponsor& sponsor = sponsors_[funded.sponsor_id()];
      const std::string budget = absl::StrCat("sponsor:", funded.sponsor_id(), ":budget");
      for (const v1::Transfer& transfer : funded.transfers()) {
        if (transfer.credit_account_id() == budget) sponsor.funded_minor += transfer.amount();
        if (transfer.debit_account_id() == budget) sponsor.funded_minor -= transfer.amount();
      }
      break;
    }
    case v1::PaymentsEvent::kHoldPlaced: {
      const v1::HoldPlaced& placed = event.hold_placed();
      const std::string& program_id = placed.hold().sponsor_program_id();
      if (placed.sponsor_id().empty() || program_id.empty()) break;
      Program& program = programs_[program_id];
      if (program.sponsor_id.empty()) program.sponsor_id = placed.sponsor_id();
      Sponsor& sponsor = sponsors_[program.sponsor_id];
      sponsor.currency = placed.max_amount().currency_code();
      Release(placed.session_id());  // a hold placed again replaces the first
      open_holds_[placed.session_id()] = {program_id, placed.max_amount().amount_minor()};
      program.reserved_minor += placed.max_amount().amount_minor();
      sponsor.reserved_minor += placed.max_amount().amount_minor();
      break;
    }
    case v1::PaymentsEvent::kSessionCaptured: {
      const v1::SessionCaptured& captured = event.session_captured();
      auto hold = open_holds_.find(captured.session_id());
      if (hold == open_holds_.end()) break;
      const std::string program_id = hold->second.program_id;
      Release(captured.session_id());
      Program& program = programs_[program_id];
      program.spent_minor += captured.amount().amount_minor();
      ++program.sessions_paid;
      Spend(sponsors_[program.sponsor_id], at, captured.amount().amount_minor());
      paid_sessions_[captured.session_id()] = program_id;
      break;
    }
    case v1::PaymentsEvent::kSessionVoided:
      Release(event.session_voided().session_id());
      break;
    case v1::PaymentsEvent::kSessionRefunded: {
      const v1::SessionRefunded& refunded = event.session_refunded();
      auto paid = paid_sessions_.find(refunded.session_id());
      if (paid == paid_sessions_.end()) break;
      Program& program = programs_[paid->second];
      program.spent_minor -= refunded.amount().amount_minor();
      Spend(sponsors_[program.sponsor_id], at, -refunded.amount().amount_minor());
      break;
    }
    default:
      break;
  }
}

std::vector<SponsorProgramBurn> SponsorBurnDown::Report(absl::Time now) const {
  std::vector<SponsorProgramBurn> rows;
  for (const auto& [program_id, program] : programs_) {
    SponsorProgramBurn row;
    row.program_id = program_id;
    row.sponsor_id = program.sponsor_id;
    row.reserved_minor = program.reserved_minor;
    row.spent_minor = program.spent_minor;
    row.sessions_paid = program.sessions_paid;
    auto sponsor = sponsors_.find(program.sponsor_id);
    if (sponsor != sponsors_.end()) {
      const Sponsor& of = sponsor->second;
      row.currency = of.currency;
      row.budget_funded_minor = of.funded_minor;
      row.budget_left_minor = of.funded_minor - of.spent_minor - of.reserved_minor;
      int64_t week = 0;
      for (const auto& [at, amount] : of.spending) {
        if (at > now - kPaceWindow && at <= now) week += amount;
      }
      row.pace_minor_per_day = week / 7;
      if (week > 0) {
        const double days = static_cast<double>(std::max<int64_t>(0, row.budget_left_minor)) * 7 /
                            static_cast<double>(week);
        row.runs_out_at = now + absl::Seconds(std::round(days * 86400));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace helpline::payments
