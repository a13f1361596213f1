#include "services/payments/money_metrics.h"

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"

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

namespace {

// INTENT_KIND_CAPTURE -> "capture"
std::string KindLabel(v1::IntentKind kind) {
  absl::string_view name = v1::IntentKind_Name(kind);
  absl::ConsumePrefix(&name, "INTENT_KIND_");
  return absl::AsciiStrToLower(name);
}

}  // namespace

IntentMetrics::IntentMetrics(prometheus::Registry& registry)
    : open_(prometheus::BuildGauge()
                .Name("helpline_payments_open_intents")
                .Help("Intents recorded and not yet answered by the payment processor")
                .Register(registry)
                .Add({})),
      oldest_(prometheus::BuildGauge()
                  .Name("helpline_payments_oldest_open_intent_age_seconds")
                  .Help("How long the oldest open intent has been open, as this worker saw it "
                        "(from its start at most)")
                  .Register(registry)
                  .Add({})),
      calls_(prometheus::BuildCounter()
                 .Name("helpline_payments_processor_calls_total")
                 .Help("Calls to the payment processor, by intent kind and result")
                 .Register(registry)) {
  // From zero, so that the first decline is an increase Prometheus sees.
  for (int kind = v1::INTENT_KIND_AUTHORISE; kind <= v1::INTENT_KIND_PAYOUT; ++kind) {
    if (!v1::IntentKind_IsValid(kind)) continue;
    for (const char* result : {"approved", "declined", "no_answer"}) {
      calls_.Add({{"kind", KindLabel(static_cast<v1::IntentKind>(kind))}, {"result", result}});
    }
  }
}

void IntentMetrics::SetBacklog(size_t open, absl::Duration oldest) {
  open_.Set(static_cast<double>(open));
  oldest_.Set(absl::ToDoubleSeconds(oldest));
}

void IntentMetrics::CountCall(v1::IntentKind kind, const char* result) {
  calls_.Add({{"kind", KindLabel(kind)}, {"result", result}}).Increment();
}

}  // namespace helpline::payments
