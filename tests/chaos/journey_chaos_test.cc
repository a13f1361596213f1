// The whole platform under load (tools/load: people and experts running the
// journey) while its parts fail on purpose: each service killed with
// SIGKILL and restarted in turn, the Kafka broker restarted, Redis
// restarted, a service frozen with SIGSTOP past its transaction timeout.
// Afterwards the event streams themselves must show that nothing went
// wrong: every acknowledged write is there exactly once, aggregates have no
// gaps or doubles, every help request ended, no session was captured twice,
// no expert was in two sessions at once, the ledger reconciles, and the
// read models answer the same after every service rebuilt them from the log.
//
// HL_CHAOS_ROUNDS (default 1) repeats the round of faults.
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/runtime/core/proto_time.h"
#include "tests/support/local_stack.h"
#include "tests/support/platform.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_stack.h"
#include "tools/events/event_records.h"
#include "tools/load/load_generator.h"

namespace helpline {
namespace {

using ::helpline::testing::LocalStack;
using ::helpline::testing::Platform;
using ::helpline::testing::RedisServerProcess;
using ::helpline::testing::ServiceProcess;

// One service's events, decoded, in partition and offset order.
struct ServiceEvents {
  std::string service;
  std::vector<events::DecodedEvent> events;
};

std::vector<ServiceEvents> ReadAllEvents(const kafka::ClientConfig& kafka,
                                         const std::string& prefix, int partitions) {
  std::vector<ServiceEvents> all;
  for (const events::EventStream& stream : events::CompiledEventStreams()) {
    ServiceEvents service{stream.service, {}};
    for (const kafka::Record& record :
         ::helpline::testing::ReadToEnd(kafka, stream.Topic(prefix), partitions)) {
      absl::StatusOr<events::DecodedEvent> event = events::DecodeEvent(record, stream);
      EXPECT_TRUE(event.ok()) << stream.Topic(prefix) << "@" << record.offset << ": "
                              << event.status();
      if (event.ok()) service.events.push_back(*std::move(event));
    }
    all.push_back(std::move(service));
  }
  return all;
}

template <class Envelope>
Envelope As(const events::DecodedEvent& event) {
  Envelope envelope;
  envelope.ParseFromString(event.envelope->SerializeAsString());
  return envelope;
}

const ServiceEvents& Of(const std::vector<ServiceEvents>& all, const std::string& service) {
  for (const ServiceEvents& events : all) {
    if (events.service == service) return events;
  }
  static const ServiceEvents* none = new ServiceEvents();
  return *none;
}

// What is still in flight: help requests not ended, sessions not over,
// ended or refunded sessions whose money payments has not settled.
std::vector<std::string> Unsettled(const std::vector<ServiceEvents>& all) {
  std::set<std::string> open_requests, open_sessions, to_capture, to_refund;
  for (const events::DecodedEvent& event : Of(all, "matching").events) {
    const std::string& id = event.meta.aggregate_id();
    const std::string type = event.event_field->message_type()->name();
    if (type == "HelpRequested") open_requests.insert(id);
    if (type == "MatchMade" || type == "HelpRequestCancelled" || type == "HelpRequestExpired") {
      open_requests.erase(id);
    }
  }
  for (const events::DecodedEvent& event : Of(all, "sessions").events) {
    sessions::v1::SessionsEvent session = As<sessions::v1::SessionsEvent>(event);
    const std::string& id = event.meta.aggregate_id();
    if (session.has_session_created()) open_sessions.insert(id);
    if (session.has_session_ended() || session.has_session_no_show() ||
        session.has_session_cancelled()) {
      open_sessions.erase(id);
    }
    if (session.has_session_ended() &&
        session.session_ended().billing().amount().amount_minor() > 0) {
      to_capture.insert(id);
    }
    if (session.has_refund_requested()) to_refund.insert(id);
  }
  for (const events::DecodedEvent& event : Of(all, "payments").events) {
    payments::v1::PaymentsEvent payment = As<payments::v1::PaymentsEvent>(event);
    to_capture.erase(payment.session_captured().session_id());
    to_refund.erase(payment.session_refunded().session_id());
  }
  std::vector<std::string> unsettled;
  for (const std::string& id : open_requests) unsettled.push_back("request " + id + " open");
  for (const std::string& id : open_sessions) unsettled.push_back("session " + id + " not over");
  for (const std::string& id : to_capture) unsettled.push_back("session " + id + " not captured");
  for (const std::string& id : to_refund) unsettled.push_back("session " + id + " not refunded");
  return unsettled;
}

// What the read models answer about the people and experts of the run.
struct ReadModelAnswers {
  std::vector<std::string> lines;
};

ReadModelAnswers AskReadModels(client::Client& client, const load::LoadReport& report) {
  ReadModelAnswers answers;
  std::vector<std::string> accounts = report.experts;
  for (size_t i = 0; i < report.people.size() && i < 12; ++i) accounts.push_back(report.people[i]);
  for (const std::string& email : accounts) {
    absl::StatusOr<client::User> user = client.SignIn(email, load::kLoadPassword);
    if (!user.ok()) {
      answers.lines.push_back(absl::StrCat(email, ": sign-in ", user.status().ToString()));
      continue;
    }
    sessions::v1::ListMySessionsRequest list;
    list.set_page_size(100);
    sessions::v1::ListMySessionsResponse sessions;
    absl::Status listed = client::Client::Call(client.sessions(),
                                               &sessions::v1::SessionsService::Stub::ListMySessions,
                                               user->access_token, list, &sessions);
    payments::v1::GetBalanceResponse balance;
    absl::Status balanced = client::Client::Call(
        client.payments(), &payments::v1::PaymentsService::Stub::GetBalance, user->access_token,
        payments::v1::GetBalanceRequest(), &balance);
    answers.lines.push_back(absl::StrCat(email, " sessions: ", listed.ToString(), " ",
                                         sessions.ShortDebugString()));
    answers.lines.push_back(absl::StrCat(email, " balance: ", balanced.ToString(), " ",
                                         balance.ShortDebugString()));
  }
  return answers;
}

int Rounds() {
  const char* rounds = std::getenv("HL_CHAOS_ROUNDS");
  return rounds == nullptr ? 1 : std::max(1, std::atoi(rounds));
}

TEST(JourneyChaosTest, NothingAcknowledgedIsLostWhileEveryPartFailsInTurn) {
  LocalStack stack;
  ASSERT_TRUE(stack.Start()) << stack.last_output();
  RedisServerProcess redis(::helpline::testing::PickFreePort());
  ASSERT_TRUE(redis.Start());
  redis::ClientOptions redis_options;
  redis_options.port = redis.port();

  Platform::Options options;
  options.sessions = true;
  options.payments = true;
  options.kafka = stack.Kafka();
  options.redis = redis_options;
  options.matching_config = {
      {"matching", {{"offer_window", "5s"}, {"request_wait_limit", "30s"}}}};
  options.sessions_config = {
      {"sessions", {{"help_now_join_window", "45s"}, {"grace_period", "15s"}}}};
  Platform platform;
  ASSERT_TRUE(platform.Start("chaos", options));
  auto target = [](ServiceProcess& service) { return absl::StrCat("127.0.0.1:", service.port()); };
  const client::Targets targets{target(platform.identity()), target(platform.catalog()),
                                target(platform.matching()), target(platform.sessions()),
                                target(platform.payments())};

  load::LoadOptions load_options;
  load_options.targets = targets;
  load_options.admin_email = ::helpline::testing::kPlatformAdminEmail;
  load_options.admin_password = ::helpline::testing::kPlatformAdminPassword;
  load_options.run_tag = "chaos";
  load_options.experts = 6;
  load_options.people = 6;
  load_options.journeys_per_second = 3;
  load_options.retry_for = absl::Minutes(2);
  load::LoadGenerator load(load_options);
  ASSERT_TRUE(load.Setup().ok());

  std::atomic<bool> stop{false};
  load::LoadReport report;
  std::thread runner([&] { report = load.Run(absl::Minutes(30), stop); });
  const absl::Time started = absl::Now();
  // Journeys go on after each fault: a few complete within two minutes.
  auto goes_on_after = [&](const std::string& fault) {
    const int64_t before = load.Completed();
    const absl::Time deadline = absl::Now() + absl::Minutes(2);
    while (load.Completed() < before + 3 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    std::cout << absl::FormatTime("%H:%M:%S ", absl::Now(), absl::LocalTimeZone()) << fault
              << ": " << load.Completed() << " journeys completed so far" << std::endl;
    EXPECT_GE(load.Completed(), before + 3) << "journeys stopped after " << fault;
  };
  goes_on_after("start");
  for (int round = 1; round <= Rounds(); ++round) {
    for (auto [name, service] : std::vector<std::pair<std::string, ServiceProcess*>>{
             {"identity", &platform.identity()},
             {"catalog", &platform.catalog()},
             {"matching", &platform.matching()},
             {"sessions", &platform.sessions()},
             {"payments", &platform.payments()}}) {
      service->Kill();
      ASSERT_TRUE(service->Start()) << name << " did not come back";
      goes_on_after(absl::StrCat("round ", round, ": kill -9 ", name));
    }
    ASSERT_TRUE(stack.Stop()) << stack.last_output();
    ASSERT_TRUE(stack.Start()) << stack.last_output();
    goes_on_after(absl::StrCat("round ", round, ": Kafka broker restarted"));
    redis.Kill();
    ASSERT_TRUE(redis.Start());
    goes_on_after(absl::StrCat("round ", round, ": Redis restarted (presence lost)"));
    // Past the processor's 10 s transaction timeout: the broker aborts its
    // transaction, and the thawed producer is fenced.
    platform.payments().Pause();
    absl::SleepFor(absl::Seconds(15));
    platform.payments().Resume();
    goes_on_after(absl::StrCat("round ", round, ": payments frozen 15 s (SIGSTOP)"));
  }
  stop = true;
  runner.join();
  std::cout << report.Text() << std::flush;
  std::cout << "chaos: rounds=" << Rounds() << " journeys_completed=" << report.journeys_completed
            << " seconds=" << absl::ToDoubleSeconds(absl::Now() - started) << std::endl;
  EXPECT_GT(report.journeys_completed, 20);

  // Wait for the reactions, timers and money of the last journeys.
  std::vector<ServiceEvents> all;
  std::vector<std::string> unsettled;
  for (absl::Time deadline = absl::Now() + absl::Minutes(3); absl::Now() < deadline;) {
    all = ReadAllEvents(stack.Kafka(), platform.prefix(), platform.partitions());
    unsettled = Unsettled(all);
    if (unsettled.empty()) break;
    absl::SleepFor(absl::Seconds(2));
  }
  EXPECT_TRUE(unsettled.empty()) << absl::StrJoin(unsettled, "\n");

  // Each aggregate's versions are 1..N, every event id unique.
  std::set<std::string> event_ids;
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> versions;
  std::map<std::tuple<std::string, std::string, std::string>, int> counts;
  for (const ServiceEvents& service : all) {
    for (const events::DecodedEvent& event : service.events) {
      EXPECT_TRUE(event_ids.insert(event.meta.event_id()).second)
          << "event " << event.meta.event_id() << " twice";
      versions[{service.service, event.meta.aggregate_id()}].push_back(
          event.meta.aggregate_version());
      ++counts[{service.service, event.meta.aggregate_id(),
                event.event_field->message_type()->name()}];
    }
  }
  for (auto& [aggregate, seen] : versions) {
    std::sort(seen.begin(), seen.end());
    for (size_t i = 0; i < seen.size(); ++i) {
      ASSERT_EQ(seen[i], static_cast<int64_t>(i + 1))
          << aggregate.first << " " << aggregate.second << " has a gap or a double";
    }
  }

  // Every acknowledged write is there exactly once.
  std::map<std::tuple<std::string, std::string, std::string>, int> acknowledged;
  for (const load::Acknowledged& ack : report.acknowledged) {
    ++acknowledged[{ack.service, ack.aggregate_id, ack.event_type}];
  }
  int missing_or_doubled = 0;
  for (const auto& [key, acks] : acknowledged) {
    if (counts[key] != acks && ++missing_or_doubled <= 10) {
      ADD_FAILURE() << std::get<0>(key) << " " << std::get<1>(key) << " " << std::get<2>(key)
                    << ": acknowledged " << acks << " times, " << counts[key] << " events";
    }
  }
  EXPECT_EQ(missing_or_doubled, 0);
  EXPECT_GT(acknowledged.size(), 100u);

  // Every help request ended once: matched, cancelled or expired.
  for (const std::string& id : report.help_requests) {
    const std::string aggregate = "help-request:" + id;
    int endings = counts[{"matching", aggregate, "MatchMade"}] +
                  counts[{"matching", aggregate, "HelpRequestCancelled"}] +
                  counts[{"matching", aggregate, "HelpRequestExpired"}];
    EXPECT_EQ(endings, 1) << aggregate;
  }

  // Money: each session captured and refunded at most once, at its bill.
  std::map<std::string, int64_t> billed;
  std::map<std::string, absl::Time> session_over;
  for (const events::DecodedEvent& event : Of(all, "sessions").events) {
    sessions::v1::SessionsEvent session = As<sessions::v1::SessionsEvent>(event);
    if (session.has_session_ended()) {
      billed[event.meta.aggregate_id()] = session.session_ended().billing().amount().amount_minor();
    }
    if (session.has_session_ended() || session.has_session_no_show() ||
        session.has_session_cancelled()) {
      session_over.emplace(event.meta.aggregate_id(), FromProtoTime(event.meta.occurred_at()));
    }
  }
  std::map<std::string, int> captures, refunds;
  for (const events::DecodedEvent& event : Of(all, "payments").events) {
    payments::v1::PaymentsEvent payment = As<payments::v1::PaymentsEvent>(event);
    if (payment.has_session_captured()) {
      const std::string& id = payment.session_captured().session_id();
      EXPECT_EQ(++captures[id], 1) << "session " << id << " captured twice";
      EXPECT_EQ(payment.session_captured().amount().amount_minor(), billed[id]) << id;
      EXPECT_EQ(payment.session_captured().fee_minor() +
                    payment.session_captured().expert_share_minor(),
                payment.session_captured().amount().amount_minor());
    }
    if (payment.has_session_refunded()) {
      EXPECT_EQ(++refunds[payment.session_refunded().session_id()], 1) << "refunded twice";
    }
  }

  // No expert in two sessions at once: from the match to the session's end.
  std::map<std::string, std::vector<std::pair<absl::Time, absl::Time>>> busy;
  for (const events::DecodedEvent& event : Of(all, "matching").events) {
    matching::v1::MatchingEvent matched = As<matching::v1::MatchingEvent>(event);
    if (!matched.has_match_made()) continue;
    const matching::v1::Match& match = matched.match_made().match();
    auto over = session_over.find(match.match_id());
    busy[match.expert_id()].push_back(
        {FromProtoTime(event.meta.occurred_at()),
         over == session_over.end() ? absl::InfiniteFuture() : over->second});
  }
  for (auto& [expert, intervals] : busy) {
    std::sort(intervals.begin(), intervals.end());
    for (size_t i = 1; i < intervals.size(); ++i) {
      EXPECT_GE(intervals[i].first, intervals[i - 1].second)
          << "expert " << expert << " matched again while in a session";
    }
  }

  // The ledger sums to zero and agrees with the processor's journal.
  client::Client client(targets);
  absl::StatusOr<client::User> admin = client.SignIn(::helpline::testing::kPlatformAdminEmail,
                                                     ::helpline::testing::kPlatformAdminPassword);
  ASSERT_TRUE(admin.ok()) << admin.status();
  payments::v1::ReconcileResponse reconcile;
  ASSERT_TRUE(client::Client::Call(client.payments(),
                                   &payments::v1::PaymentsService::Stub::Reconcile,
                                   admin->access_token, payments::v1::ReconcileRequest(),
                                   &reconcile)
                  .ok());
  EXPECT_TRUE(reconcile.accounts_sum_to_zero());
  EXPECT_TRUE(reconcile.balances_match_replay());
  EXPECT_TRUE(reconcile.processor_matches_ledger());
  EXPECT_TRUE(reconcile.flags_hold());
  for (const std::string& problem : reconcile.problems()) ADD_FAILURE() << problem;

  // Read models rebuilt from the log answer as the ones that lived through it.
  ReadModelAnswers before = AskReadModels(client, report);
  for (ServiceProcess* service : {&platform.payments(), &platform.sessions(),
                                  &platform.matching(), &platform.catalog(),
                                  &platform.identity()}) {
    EXPECT_TRUE(service->Stop());
  }
  for (ServiceProcess* service : {&platform.identity(), &platform.catalog(),
                                  &platform.matching(), &platform.sessions(),
                                  &platform.payments()}) {
    ASSERT_TRUE(service->Start());
  }
  ReadModelAnswers after = AskReadModels(client, report);
  EXPECT_EQ(before.lines, after.lines);
  EXPECT_TRUE(platform.Stop());
}

}  // namespace
}  // namespace helpline
