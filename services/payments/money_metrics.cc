#include "services/payments/money_metrics.h"

namespace helpline::payments {

MoneyGauges::MoneyGauges(prometheus::Registry& registry)
    : count_(prometheus::BuildGauge()
                 .Name("helpline_payments_attention")
                 .Help("Sessions whose money needs a person, by state (experts for OWED)")
                 .Register(registry)),
      amount_(prometheus::BuildGauge()
                  .Name("helpline_payments_attention_minor_units")
                  .Help("The amounts of helpline_payments_attention, in minor units")
                  .Register(registry)) {}

void MoneyGauges::Set(const MoneyFigures& figures) {
  for (const auto& [state, count] : figures.count) {
    count_.Add({{"state", state}}).Set(static_cast<double>(count));
  }
  for (const auto& [state, amount] : figures.amount_minor) {
    amount_.Add({{"state", state}}).Set(static_cast<double>(amount));
  }
}

}  // namespace helpline::payments
