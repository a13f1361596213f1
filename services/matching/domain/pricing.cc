#include "services/matching/domain/pricing.h"

#include <algorithm>

namespace helpline::matching {

PriceFigures PriceFigures::Of(const catalog::v1::PriceTerms& price) {
  PriceFigures figures;
  if (price.has_fixed()) {
    figures.fixed = true;
    figures.amount_minor = price.fixed().price().amount_minor();
    figures.minutes = price.fixed().session_minutes();
    figures.currency = price.fixed().price().currency_code();
  } else {
    figures.amount_minor = price.per_minute().rate().amount_minor();
    figures.minutes = price.per_minute().minimum_minutes();
    figures.currency = price.per_minute().rate().currency_code();
  }
  return figures;
}

int PriceFigures::MaxMinutes(int requested, int sponsor_cap) const {
  int cap = sponsor_cap > 0 ? std::min(requested, sponsor_cap) : requested;
  return fixed ? std::min(cap, minutes) : cap;
}

int64_t PriceFigures::MaxAmountMinor(int max_minutes) const {
  return fixed ? amount_minor : amount_minor * std::max(max_minutes, minutes);
}

BudgetFigures BudgetFigures::Of(const v1::Budget& budget) {
  BudgetFigures figures;
  if (budget.has_max_per_minute()) {
    figures.per_minute = true;
    figures.limit_minor = budget.max_per_minute().amount_minor();
    figures.currency = budget.max_per_minute().currency_code();
  } else if (budget.has_max_total()) {
    figures.limit_minor = budget.max_total().amount_minor();
    figures.currency = budget.max_total().currency_code();
  }
  return figures;
}

std::optional<double> BudgetFigures::Fit(const PriceFigures& price, int max_minutes) const {
  if (limit_minor <= 0 || currency != price.currency) return std::nullopt;
  int64_t limit = limit_minor;
  int64_t spent = price.MaxAmountMinor(max_minutes);
  if (per_minute) {
    if (price.fixed) {
      limit = limit_minor * std::max(max_minutes, 1);
    } else {
      spent = price.amount_minor;
    }
  }
  if (spent > limit) return std::nullopt;
  return 1.0 - static_cast<double>(spent) / static_cast<double>(limit);
}

SessionTerms TermsFor(const catalog::v1::PriceTerms& price, int minutes, int sponsor_cap) {
  PriceFigures figures = PriceFigures::Of(price);
  SessionTerms terms;
  terms.max_minutes = figures.MaxMinutes(minutes, sponsor_cap);
  terms.max_amount.set_currency_code(figures.currency);
  terms.max_amount.set_amount_minor(figures.MaxAmountMinor(terms.max_minutes));
  return terms;
}

std::optional<double> BudgetFit(const v1::Budget& budget, const catalog::v1::PriceTerms& price,
                                const SessionTerms& terms) {
  return BudgetFigures::Of(budget).Fit(PriceFigures::Of(price), terms.max_minutes);
}

}  // namespace helpline::matching
