#pragma once

#include <optional>

#include "helpline/catalog/v1/catalog.pb.h"
#include "helpline/matching/v1/matching.pb.h"

// What a session with an expert can cost, and whether a person's budget
// covers it. Money in integer minor units of one currency.
namespace helpline::matching {

struct SessionTerms {
  // The session ends at this many minutes.
  int max_minutes = 0;
  // The most it can cost: rate × max(minutes, minimum minutes), or the
  // fixed price. What payments holds.
  runtime::v1::Money max_amount;
};

// `minutes`: what the person accepts; `sponsor_cap`: a sponsor program's
// maximum minutes per session, 0 for none. A fixed price's session lasts
// at most its own minutes.
SessionTerms TermsFor(const catalog::v1::PriceTerms& price, int minutes, int sponsor_cap = 0);

// Whether `budget` covers `terms` at `price`: nullopt if not; else how much
// of the budget is left over, 0 (all of it used) to 1 (free).
std::optional<double> BudgetFit(const v1::Budget& budget, const catalog::v1::PriceTerms& price,
                                const SessionTerms& terms);

}  // namespace helpline::matching
