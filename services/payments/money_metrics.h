#pragma once

#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/payments/domain/read_model.h"

namespace helpline::payments {

// The money that needs a person, as Prometheus gauges by state
// (CAPTURE_FAILED, REFUND_FAILED, CAPTURING, REFUNDING, UNPAID, OWED):
//   helpline_payments_attention{state}              sessions (experts for OWED)
//   helpline_payments_attention_minor_units{state}  their amounts, minor units
class MoneyGauges {
 public:
  explicit MoneyGauges(prometheus::Registry& registry);
  void Set(const MoneyFigures& figures);

 private:
  prometheus::Family<prometheus::Gauge>& count_;
  prometheus::Family<prometheus::Gauge>& amount_;
};

}  // namespace helpline::payments
