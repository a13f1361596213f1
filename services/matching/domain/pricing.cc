#include "services/matching/domain/pricing.h"

#include <algorithm>

namespace helpline::matching {

SessionTerms TermsFor(const catalog::v1::PriceTerms& price, int minutes, int sponsor_cap) {
  SessionTerms terms;
  int cap = sponsor_cap > 0 ? std::min(minutes, sponsor_cap) : minutes;
  if (price.has_fixed()) {
    terms.max_minutes = std::min(cap, price.fixed().session_minutes());
    terms.max_amount = price.fixed().price();
  } else {
    const catalog::v1::PerMinutePrice& rate = price.per_minute();
    terms.max_minutes = cap;
    terms.max_amount.set_currency_code(rate.rate().currency_code());
    terms.max_amount.set_amount_minor(rate.rate().amount_minor() *
                                      std::max(cap, rate.minimum_minutes()));
  }
  return terms;
}

std::optional<double> BudgetFit(const v1::Budget& budget, const catalog::v1::PriceTerms& price,
                                const SessionTerms& terms) {
  const runtime::v1::Money& cost = terms.max_amount;
  int64_t limit = 0;
  int64_t spent = 0;
  if (budget.has_max_per_minute()) {
    if (budget.max_per_minute().currency_code() != cost.currency_code()) return std::nullopt;
    if (price.has_per_minute()) {
      limit = budget.max_per_minute().amount_minor();
      spent = price.per_minute().rate().amount_minor();
    } else {
      limit = budget.max_per_minute().amount_minor() * std::max(terms.max_minutes, 1);
      spent = cost.amount_minor();
    }
  } else if (budget.has_max_total()) {
    if (budget.max_total().currency_code() != cost.currency_code()) return std::nullopt;
    limit = budget.max_total().amount_minor();
    spent = cost.amount_minor();
  } else {
    return std::nullopt;
  }
  if (limit <= 0 || spent > limit) return std::nullopt;
  return 1.0 - static_cast<double>(spent) / static_cast<double>(limit);
}

}  // namespace helpline::matching
