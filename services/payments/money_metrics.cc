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

namespace {

prometheus::Family<prometheus::Gauge>& SponsorGauge(prometheus::Registry& registry,
                                                    const std::string& name,
                                                    const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

SponsorGauges::SponsorGauges(prometheus::Registry& registry)
    : funded_(SponsorGauge(registry, "helpline_sponsor_budget_funded_minor_units",
                           "What the sponsor paid into its budget")),
      left_(SponsorGauge(registry, "helpline_sponsor_budget_left_minor_units",
                         "The sponsor's budget not spent nor reserved by an open hold")),
      pace_(SponsorGauge(registry, "helpline_sponsor_spend_per_day_minor_units",
                         "The sponsor's spending per day over the last 7 days")),
      runs_out_(SponsorGauge(registry, "helpline_sponsor_budget_runs_out_timestamp_seconds",
                             "When the budget left runs out at the last 7 days' pace")),
      reserved_(SponsorGauge(registry, "helpline_sponsor_program_reserved_minor_units",
                             "What the program's open holds reserve of the budget")),
      spent_(SponsorGauge(registry, "helpline_sponsor_program_spent_minor_units",
                          "What the program's sessions cost, refunds given back")),
      sessions_(SponsorGauge(registry, "helpline_sponsor_program_sessions_paid",
                             "Sessions the program paid for")) {}

void SponsorGauges::Set(const std::vector<SponsorProgramBurn>& programs) {
  for (const SponsorProgramBurn& program : programs) {
    const prometheus::Labels sponsor = {{"sponsor", program.sponsor_id},
                                        {"currency", program.currency}};
    const prometheus::Labels labels = {{"program", program.program_id},
                                       {"sponsor", program.sponsor_id},
                                       {"currency", program.currency}};
    funded_.Add(sponsor).Set(static_cast<double>(program.budget_funded_minor));
    left_.Add(sponsor).Set(static_cast<double>(program.budget_left_minor));
    pace_.Add(sponsor).Set(static_cast<double>(program.pace_minor_per_day));
    if (program.runs_out_at) {
      runs_out_.Add(sponsor).Set(absl::ToDoubleSeconds(*program.runs_out_at - absl::UnixEpoch()));
    } else if (runs_out_.Has(sponsor)) {
      runs_out_.Remove(&runs_out_.Add(sponsor));
    }
    reserved_.Add(labels).Set(static_cast<double>(program.reserved_minor));
    spent_.Add(labels).Set(static_cast<double>(program.spent_minor));
    sessions_.Add(labels).Set(static_cast<double>(program.sessions_paid));
  }
}

}  // namespace helpline::payments
