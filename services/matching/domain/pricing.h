#pragma once

#include <cstdint>
#include <optional>
#include <string>

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

// An expert's price terms as plain numbers (ranking reads them for every
// candidate).
struct PriceFigures {
  bool fixed = false;
  // The rate per minute, or the fixed price.
  int64_t amount_minor = 0;
  // The minimum minutes billed, or the fixed session's minutes.
  int minutes = 0;
  std::string currency;

  static PriceFigures Of(const catalog::v1::PriceTerms& price);
  // The session's cap for what the person accepts (`minutes`) and a sponsor
  // program's maximum (`sponsor_cap`, 0 for none); a fixed price's session
  // lasts at most its own minutes.
  int MaxMinutes(int minutes, int sponsor_cap = 0) const;
  int64_t MaxAmountMinor(int max_minutes) const;
};

// A person's budget as plain numbers.
struct BudgetFigures {
  bool per_minute = false;
  int64_t limit_minor = 0;  // 0: no budget
  std::string currency;

  static BudgetFigures Of(const v1::Budget& budget);
  // Nullopt if the budget does not cover a session of `max_minutes` at
  // `price`; else how much of it is left over, 0 (all used) to 1 (free).
  std::optional<double> Fit(const PriceFigures& price, int max_minutes) const;
};

SessionTerms TermsFor(const catalog::v1::PriceTerms& price, int minutes, int sponsor_cap = 0);

std::optional<double> BudgetFit(const v1::Budget& budget, const catalog::v1::PriceTerms& price,
                                const SessionTerms& terms);

}  // namespace helpline::matching
