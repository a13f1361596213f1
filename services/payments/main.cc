// helpline-payments: the ledger per currency and the money flows of
// sessions and sponsors; reactors on matching, sessions and catalog; a
// worker that executes the recorded intents at the payment processor.
#include <functional>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/payments/domain/payments_domain.h"
#include "services/payments/domain/reactions.h"
#include "services/payments/domain/read_model.h"
#include "services/payments/intent_worker.h"
#include "services/payments/money_metrics.h"
#include "services/payments/payments_service.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/server.h"
#include "services/runtime/server/tls.h"

namespace helpline::payments {
namespace {

constexpr char kService[] = "payments";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  server::AddServerKeys(schema);
  kafka::AddKafkaKeys(schema);
  es::AddProcessorKeys(schema);
  AddClockKeys(schema);
  auth::AddAuthKeys(schema);
  auth::AddIdentityTargetKey(schema);
  server::AddClientTlsKeys(schema, "payments.processor", "the payment processor");
  schema.String("topics.prefix", "", "prepended to every topic and group name (tests)")
      .String("payments.currency", "EUR", "the deployment's currency (ISO 4217): its ledger")
      .Int("payments.commission_bps", 2000, 0, 10000, "the platform's commission, basis points")
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
  server::ShutdownSignal shutdown;
  server::Config config = server::LoadConfigOrExit(Schema(), argc, argv);
  server::InitLogging(kService, config);
  log::Info("starting", {{"config", config.Describe()}});
  es::ServiceHost host(kService, config, PaymentsType());
  const std::string& prefix = host.prefix;
  const es::ServiceTopics& topics = host.topics;
  CommissionOptions commission;
  commission.currency = config.GetString("payments.currency");
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
  es::EventFeed events(*host.kafka, {topics.events, topics.deadletter, "payments.read-model"},
                       [] { return std::make_unique<v1::PaymentsEvent>(); }, read_model);

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
  es::Reactor reactor(
      *host.kafka, {prefix + "payments.reactions", topics.commands, topics.deadletter},
      {{prefix + "payments.from-matching", prefix + "helpline.matching.events", &from_matching},
       {prefix + "payments.from-sessions", prefix + "helpline.sessions.events", &from_sessions},
       {prefix + "payments.from-catalog", prefix + "helpline.catalog.events", &from_catalog}});
  if (!server::StartAll({{"closed accounts", [&] { return host.closed_accounts.Start(); }},
                         {"read model", [&] { return events.Start(); }},
                         {"processor", [&] { return host.processor.Start(); }},
                         {"reactions", [&] { return reactor.Start(); }}})) {
    return 1;
  }
  absl::StatusOr<std::unique_ptr<es::CommandSender>> sender =
      es::CommandSender::Create(*host.kafka, {topics, ""});
  if (!sender.ok()) {
    log::Error("cannot start: command sender", {{"error", sender.status().ToString()}});
    return 1;
  }

  auth::IdentityCallGuard callers(
      config, host.wall_clock, config.GetDouble("payments.requests_per_second_per_caller"),
      host.server);
  callers.guard().RefuseClosedAccounts(
      [&](const std::string& user_id) { return host.closed_accounts.IsClosed(user_id); });

  PaymentsOptions options;
  options.currency = commission.currency;
  options.processor_channel = server::ChannelFromConfigOrExit(config, "payments.processor");
  options.payout_minimum_minor = config.GetInt("payments.payout_minimum_minor");
  options.refund_window = config.GetDuration("payments.refund_window");
  es::Front front(**sender, events, options.command_timeout);
  PaymentsService service(options, PaymentsParts{front, read_model, callers.guard(), host.clock});
  host.server.AddService(&service);
  if (absl::Status started = host.server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    return 1;
  }
  host.server.ServeWhen([&] {
    return host.processor.InService() && events.CaughtUp() && host.closed_accounts.CaughtUp();
  });

  std::unique_ptr<PaymentProcessor> psp = SandboxProcessorClient(options.processor_channel);
  IntentWorker worker(
      {config.GetDuration("payments.processor_timeout"),
       config.GetDuration("payments.processor_retry_after")},
      *psp, [&] { return read_model.OpenIntents(); },
      [&](const v1::RecordProcessorOutcome& outcome) {
        v1::PaymentsCommand command;
        *command.mutable_record_processor_outcome() = outcome;
        const std::string ledger = LedgerId(options.currency);
        return front.Write(command, es::CommandOrigin::ByHelpline(
                                        ledger, ids::DerivedCommandId(outcome.intent_id(), "outcome"),
                                        "payments.worker"));
      });
  MoneyGauges gauges(host.server.metrics().registry());
  std::thread working([&] {
    absl::Duration interval = config.GetDuration("payments.worker_interval");
    while (!shutdown.WaitFor(interval)) {
      if (!events.CaughtUp()) continue;
      worker.RunOnce(absl::Now());
      gauges.Set(read_model.Figures());
    }
  });

  // The scheduled payout batch: one per interval, named after it, so a
  // restart inside the interval pays nobody twice.
  std::thread batches([&] {
    absl::Duration interval = config.GetDuration("payments.payout_batch_interval");
    int64_t done = -1;
    while (!shutdown.WaitFor(std::min(interval, absl::Seconds(10)))) {
      if (!events.CaughtUp()) continue;
      int64_t bucket = absl::ToUnixSeconds(host.clock.Now()) / absl::ToInt64Seconds(interval);
      if (bucket == done) continue;
      v1::PaymentsCommand command;
      v1::RunPayoutBatch& batch = *command.mutable_run_payout_batch();
      batch.set_batch_id(absl::StrCat("batch-", bucket));
      batch.set_minimum_minor(options.payout_minimum_minor);
      *batch.mutable_refund_window() = ToProtoDuration(options.refund_window);
      const std::string ledger = LedgerId(options.currency);
      absl::Status sent = front.Write(
          command, es::CommandOrigin::ByHelpline(
                       ledger, ids::DerivedCommandId(ledger, batch.batch_id()), "payments.payouts"));
      if (sent.ok()) {
        done = bucket;
      } else {
        log::Warn("payout batch not run; trying again", {{"error", sent.ToString()}});
      }
    }
  });

  shutdown.Wait();
  log::Info("stopping");
  host.server.Shutdown();
  working.join();
  batches.join();
  reactor.Stop();
  host.processor.Stop();
  events.Stop();
  sender->reset();
  return 0;
}

}  // namespace
}  // namespace helpline::payments

int main(int argc, char** argv) { return helpline::payments::Main(argc, argv); }
