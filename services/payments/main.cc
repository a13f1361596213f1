// helpline-payments: the ledger per currency and the money flows of
// sessions and sponsors; reactors on matching, sessions and catalog; a
// worker that executes the recorded intents at the payment processor.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/payments/domain/payments_domain.h"
#include "services/payments/domain/reactions.h"
#include "services/payments/domain/read_model.h"
#include "services/payments/intent_worker.h"
#include "services/payments/money_metrics.h"
#include "services/payments/payments_service.h"
#include "services/payments/payout_scheduler.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/loop.h"
#include "services/runtime/server/tls.h"

namespace helpline::payments {
namespace {

constexpr char kService[] = "payments";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  es::AddServiceKeys(schema);
  auth::AddIdentityTargetKey(schema);
  server::AddClientTlsKeys(schema, "payments.processor", "the payment processor");
  es::AddCurrencyKey(schema);
  schema.Int("payments.commission_bps", 2000, 0, 10000, "the platform's commission, basis points")
      .String("payments.commission_overrides", "",
              "other rates: \"category:<id>=<bps>,program:<id>=<bps>\" (a program's wins)")
      .String("payments.processor_target", "127.0.0.1:7006", "the payment processor (gRPC)")
      .Duration("payments.refund_window", absl::Hours(72), absl::Minutes(1),
                kDedupeWindow - kClockSkewAllowance,
                "earnings become available this long after the capture (the payout hold); "
                "sessions.refund_window must not be longer")
      .OneOf("payments.refund_after_payout", "recover", {"recover", "absorb"},
             "a refund after the expert was paid out: the expert owes what their payable lacks "
             "and it is recovered from their next earnings (recover), or the platform bears it "
             "(absorb)")
      .Duration("payments.processor_timeout", absl::Seconds(5), absl::Milliseconds(100),
                absl::Minutes(5), "how long a call to the processor may take")
      .Duration("payments.processor_retry_after", absl::Seconds(2), absl::Milliseconds(50),
                absl::Minutes(10), "an unanswered call is tried again after this")
      .Int("payments.payout_minimum_minor", 1000, 1, 1'000'000'000,
           "the smallest payout, in minor units")
      .Duration("payments.payout_batch_interval", absl::Hours(24), absl::Seconds(1),
                kDedupeWindow - kClockSkewAllowance,
                "how often every expert's available earnings are paid out (a batch is named "
                "after its interval and remembered for the ledger's dedupe window)")
      .Duration("payments.worker_interval", absl::Milliseconds(200), absl::Milliseconds(10),
                absl::Minutes(1), "how often the worker looks for intents to execute")
      .Double("payments.requests_per_second_per_caller", 20, 0.1, 1e6,
              "calls a user makes per second (burst: 5 times that)");
  return schema;
}

int Main(int argc, char** argv) {
  es::ServiceHost host(kService, Schema(), argc, argv, PaymentsType());
  const server::Config& config = host.config;
  CommissionOptions commission;
  commission.currency = es::CurrencyOrExit(config);
  commission.default_bps = static_cast<int32_t>(config.GetInt("payments.commission_bps"));
  commission.platform_absorbs_refund_shortfall =
      config.GetString("payments.refund_after_payout") == "absorb";
  if (absl::Status parsed =
          ParseCommissionOverrides(config.GetString("payments.commission_overrides"), commission);
      !parsed.ok()) {
    log::Error(absl::StrCat("bad config: payments.commission_overrides: ", parsed.message()));
    return 2;
  }

  PaymentsReadModel read_model(commission.currency, config.GetDuration("payments.refund_window"));
  host.OwnEvents<v1::PaymentsEvent>(read_model);

  es::TypedReaction<matching::v1::MatchingEvent, v1::PaymentsCommand> from_matching(
      [commission](const matching::v1::MatchingEvent& event) {
        return PaymentsFromMatching(event, commission);
      });
  es::TypedReaction<sessions::v1::SessionsEvent, v1::PaymentsCommand> from_sessions(
      [commission](const sessions::v1::SessionsEvent& event) {
        return PaymentsFromSessions(event, commission);
      });
  es::TypedReaction<catalog::v1::CatalogEvent, v1::PaymentsCommand> from_catalog(
      [commission](const catalog::v1::CatalogEvent& event) {
        return PaymentsFromCatalog(event, commission);
      });
  host.React({{"from-matching", "matching", &from_matching},
              {"from-sessions", "sessions", &from_sessions},
              {"from-catalog", "catalog", &from_catalog}});

  PaymentsOptions options;
  options.currency = commission.currency;
  options.processor_channel = server::ChannelFromConfigOrExit(config, "payments.processor");
  options.payout_minimum_minor = config.GetInt("payments.payout_minimum_minor");
  options.refund_window = config.GetDuration("payments.refund_window");
  PaymentsService service(
      options, PaymentsParts{host.front(), read_model,
                             host.Callers(config.GetDouble("payments.requests_per_second_per_caller")),
                             host.clock});

  // The intents recorded in events, executed at the processor.
  std::unique_ptr<PaymentProcessor> psp = SandboxProcessorClient(options.processor_channel);
  IntentMetrics intent_metrics(host.server.metrics().registry());
  IntentWorker worker(
      {config.GetDuration("payments.processor_timeout"),
       config.GetDuration("payments.processor_retry_after")},
      *psp, [&] { return read_model.OpenIntents(); },
      [&](const v1::RecordProcessorOutcome& outcome) {
        v1::PaymentsCommand command;
        *command.mutable_record_processor_outcome() = outcome;
        const std::string ledger = LedgerId(options.currency);
        return host.front().Write(
            command, es::CommandOrigin::ByHelpline(
                         ledger, ids::DerivedCommandId(outcome.intent_id(), "outcome"),
                         "payments.worker"));
      },
      &intent_metrics);
  MoneyGauges gauges(host.server.metrics().registry());
  SponsorGauges sponsor_gauges(host.server.metrics().registry());
  server::Loop working("intent worker", config.GetDuration("payments.worker_interval"), [&] {
    worker.RunOnce(absl::Now());
    gauges.Set(read_model.Figures());
    sponsor_gauges.Set(read_model.SponsorPrograms(host.clock.Now()));
  });
  host.AddLoop("intent worker", working);
  PayoutScheduler payouts({options.currency, config.GetDuration("payments.payout_batch_interval"),
                           options.payout_minimum_minor, options.refund_window},
                          host.front(), host.clock);
  host.AddLoop("payout scheduler", payouts);
  return host.Run({&service});
}

}  // namespace
}  // namespace helpline::payments

int main(int argc, char** argv) { return helpline::payments::Main(argc, argv); }
