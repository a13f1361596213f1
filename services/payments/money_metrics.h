#pragma once

#include <cstddef>

#include "absl/time/time.h"
#include "helpline/payments/v1/events.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include <vector>

#include "services/payments/domain/read_model.h"
#include "services/payments/domain/sponsor_burn_down.h"

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

// What the intent worker sees of the processor:
//   helpline_payments_open_intents                    intents not answered yet
//   helpline_payments_oldest_open_intent_age_seconds  since this worker first saw the oldest
//   helpline_payments_processor_calls_total{kind,result}
//       kind: authorise, capture, void, refund, charge, payout;
//       result: approved, declined, no_answer
class IntentMetrics {
 public:
  explicit IntentMetrics(prometheus::Registry& registry);
  void SetBacklog(size_t open, absl::Duration oldest);
  void CountCall(v1::IntentKind kind, const char* result);

 private:
  prometheus::Gauge& open_;
  prometheus::Gauge& oldest_;
  prometheus::Family<prometheus::Counter>& calls_;
};

// Sponsor programs' budgets burning down (SponsorBurnDown), amounts in
// minor units of `currency`:
//   helpline_sponsor_budget_funded_minor_units{sponsor,currency}
//   helpline_sponsor_budget_left_minor_units{sponsor,currency}
//   helpline_sponsor_spend_per_day_minor_units{sponsor,currency}     last 7 days' pace
//   helpline_sponsor_budget_runs_out_timestamp_seconds{sponsor,currency}  absent without spending
//   helpline_sponsor_program_reserved_minor_units{program,sponsor,currency}
//   helpline_sponsor_program_spent_minor_units{program,sponsor,currency}
//   helpline_sponsor_program_sessions_paid{program,sponsor,currency}
class SponsorGauges {
 public:
  explicit SponsorGauges(prometheus::Registry& registry);
  void Set(const std::vector<SponsorProgramBurn>& programs);

 private:
  prometheus::Family<prometheus::Gauge>& funded_;
  prometheus::Family<prometheus::Gauge>& left_;
  prometheus::Family<prometheus::Gauge>& pace_;
  prometheus::Family<prometheus::Gauge>& runs_out_;
  prometheus::Family<prometheus::Gauge>& reserved_;
  prometheus::Family<prometheus::Gauge>& spent_;
  prometheus::Family<prometheus::Gauge>& sessions_;
};

}  // namespace helpline::payments
