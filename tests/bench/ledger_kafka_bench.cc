// helpline-ledger-kafka-bench: the ledger through Kafka end to end, driven
// by tools/bench ledger-transfers.
//
//   helpline-ledger-kafka-bench --bootstrap-servers H:P [--seconds 10]
//       [--in-flight 2000] [--partitions 12]
//     Payments' processor in process on its own topics; a sponsor program
//     and a funded budget; then sponsored sessions back to back, each a
//     HoldSession (two linked pending transfers) and a CaptureSession
//     (posting part of both, the rest released), as commands through the
//     commands topic, decided in batches, written in Kafka transactions and
//     replied to. Prints one JSON line:
//     {"transfers_per_sec", "commands_per_sec", "p50_ms", "p99_ms", "failures"}.
#include <iostream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/processor.h"
#include "tests/bench/command_load.h"

namespace helpline::bench {
namespace {

using payments::v1::PaymentsCommand;

struct Flags {
  kafka::ClientConfig client;
  double seconds = 10;
  int in_flight = 2000;
  int partitions = 12;
};

int Fail(const std::string& message) {
  std::cerr << "helpline-ledger-kafka-bench: " << message << "\n";
  return 1;
}

runtime::v1::Money Eur(int64_t minor) {
  runtime::v1::Money money;
  money.set_currency_code("EUR");
  money.set_amount_minor(minor);
  return money;
}

PaymentsCommand ForLedger() {
  PaymentsCommand command;
  command.mutable_meta()->set_aggregate_id(payments::LedgerId("EUR"));
  command.mutable_meta()->set_command_id(ids::NewUuidV7());
  return command;
}

absl::Status SendAndWait(es::CommandSender& sender, PaymentsCommand command) {
  absl::StatusOr<runtime::v1::Reply> reply = sender.Send(command, absl::Now() + absl::Seconds(30));
  if (!reply.ok()) return reply.status();
  if (reply->code() != 0) return absl::InternalError(reply->ShortDebugString());
  return absl::OkStatus();
}

// Sends once fewer than `limit` of `recorder`'s are in flight, without
// waiting for the reply; `recorder` gets its outcome and latency.
void SendAsync(es::CommandSender& sender, Recorder& recorder, PaymentsCommand command, int limit) {
  auto owned = std::make_shared<PaymentsCommand>(std::move(command));
  recorder.WaitBelow(limit);
  absl::Time sent = absl::Now();
  sender.SendAsync(*owned, *owned->mutable_meta(), sent + absl::Seconds(60),
                   [&recorder, sent, owned](absl::StatusOr<runtime::v1::Reply> reply) {
                     recorder.Done(absl::Now() - sent, reply.ok() && reply->code() == 0);
                   });
}

int Run(const Flags& flags) {
  const std::string prefix = absl::StrCat("ledger-bench-", ids::NewUuidV7(), ".");
  if (absl::Status s = CreateServiceTopics(flags.client, "payments", prefix, flags.partitions);
      !s.ok()) {
    return Fail(s.ToString());
  }
  es::ProcessorOptions options;
  options.service = prefix + "payments";
  options.topics = es::ServiceTopics::For("payments", prefix);
  SystemClock clock;
  es::Processor processor(flags.client, options, payments::PaymentsType(), clock, nullptr);
  if (absl::Status s = processor.Start(); !s.ok()) return Fail(s.ToString());
  absl::Time ready_by = absl::Now() + absl::Seconds(120);
  while (!processor.Ready() && absl::Now() < ready_by) absl::SleepFor(absl::Milliseconds(5));
  if (!processor.Ready()) return Fail("processor not ready");
  auto kafka = kafka::SharedClients::Create(flags.client);
  if (!kafka.ok()) return Fail(kafka.status().ToString());
  auto sender = es::CommandSender::Create(**kafka, {options.topics, ""});
  if (!sender.ok()) return Fail(sender.status().ToString());

  // The sponsor's program and a budget that never runs out (the bench plays
  // the intent worker: the processor approved the charge).
  PaymentsCommand program = ForLedger();
  program.mutable_record_sponsor_program()->set_program_id("bench-program");
  program.mutable_record_sponsor_program()->set_sponsor_id("bench-sponsor");
  program.mutable_record_sponsor_program()->set_free_sessions_per_person(100);
  PaymentsCommand fund = ForLedger();
  fund.mutable_fund_sponsor_budget()->set_funding_id("bench");
  fund.mutable_fund_sponsor_budget()->set_sponsor_id("bench-sponsor");
  *fund.mutable_fund_sponsor_budget()->mutable_amount() = Eur(int64_t{1} << 50);
  PaymentsCommand charged = ForLedger();
  charged.mutable_record_processor_outcome()->set_intent_id("fund:bench");
  charged.mutable_record_processor_outcome()->set_outcome(payments::v1::INTENT_OUTCOME_SUCCEEDED);
  for (const PaymentsCommand& command : {program, fund, charged}) {
    if (absl::Status s = SendAndWait(**sender, command); !s.ok()) return Fail(s.ToString());
  }

  std::mt19937 random(1);
  int64_t session = 0;
  nlohmann::json figures;
  for (int phase = 0; phase < 2; ++phase) {
    Recorder holds;
    Recorder captures;
    absl::Time started = absl::Now();
    absl::Time end = started + (phase == 0 ? absl::Seconds(2) : absl::Seconds(flags.seconds));
    while (absl::Now() < end) {
      const std::string id = absl::StrCat("bench-session-", session);
      PaymentsCommand hold = ForLedger();
      payments::v1::HoldSession& h = *hold.mutable_hold_session();
      h.set_session_id(id);
      h.set_person_id(absl::StrCat("person-", session));
      h.set_expert_id(absl::StrCat("expert-", session % 1000));
      *h.mutable_max_amount() = Eur(3000);
      h.set_commission_bps(2000);
      h.set_sponsor_program_id("bench-program");
      SendAsync(**sender, holds, std::move(hold), 1 << 30);
      PaymentsCommand capture = ForLedger();
      capture.mutable_capture_session()->set_session_id(id);
      *capture.mutable_capture_session()->mutable_amount() = Eur(1 + random() % 3000);
      SendAsync(**sender, captures, std::move(capture), flags.in_flight / 2);
      ++session;
    }
    captures.Drain();
    holds.Drain();
    if (phase == 0) continue;
    const double seconds = absl::ToDoubleSeconds(absl::Now() - started);
    const double sessions_per_sec = captures.completed() / seconds;
    // Two pending transfers per hold, two posts per capture.
    figures = {{"transfers_per_sec", sessions_per_sec * 4},
               {"commands_per_sec", sessions_per_sec * 2},
               {"p50_ms", captures.Percentile(0.5)},
               {"p99_ms", captures.Percentile(0.99)},
               {"failures", holds.failures() + captures.failures()}};
  }
  sender->reset();
  processor.Stop();
  std::cout << figures.dump() << std::endl;
  return 0;
}

}  // namespace
}  // namespace helpline::bench

int main(int argc, char** argv) {
  helpline::bench::Flags flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    std::string value = argv[i + 1];
    bool ok = true;
    if (name == "--bootstrap-servers") {
      flags.client.bootstrap_servers = value;
    } else if (name == "--seconds") {
      ok = absl::SimpleAtod(value, &flags.seconds);
    } else if (name == "--in-flight") {
      ok = absl::SimpleAtoi(value, &flags.in_flight);
    } else if (name == "--partitions") {
      ok = absl::SimpleAtoi(value, &flags.partitions);
    } else {
      ok = false;
    }
    if (!ok) return helpline::bench::Fail("bad flag " + name + " " + value);
  }
  if (flags.client.bootstrap_servers.empty()) {
    return helpline::bench::Fail("--bootstrap-servers is required");
  }
  return helpline::bench::Run(flags);
}
