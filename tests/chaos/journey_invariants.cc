#include "tests/chaos/journey_invariants.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/io/coded_stream.h"
#include "gtest/gtest.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "google/protobuf/wire_format_lite.h"
#include "services/runtime/core/proto_time.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"

namespace helpline::chaos {
namespace {

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

// A command's meta: field 1 of every service's Command.
std::optional<runtime::v1::CommandMeta> CommandMetaOf(const std::string& value) {
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(value.data()),
                                               static_cast<int>(value.size()));
  while (uint32_t tag = input.ReadTag()) {
    if (tag == (1 << 3 | 2)) {
      std::string bytes;
      uint32_t length = 0;
      if (!input.ReadVarint32(&length) || !input.ReadString(&bytes, static_cast<int>(length))) break;
      runtime::v1::CommandMeta meta;
      if (meta.ParseFromString(bytes)) return meta;
      break;
    }
    if (!google::protobuf::internal::WireFormatLite::SkipField(&input, tag)) break;
  }
  return std::nullopt;
}

}  // namespace

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

std::vector<std::string> AskReadModels(client::Client& client, const load::LoadReport& report) {
  std::vector<std::string> answers;
  std::vector<std::string> accounts = report.experts;
  for (size_t i = 0; i < report.people.size() && i < 12; ++i) accounts.push_back(report.people[i]);
  for (const std::string& email : accounts) {
    absl::StatusOr<client::User> user = client.SignIn(email, load::kLoadPassword);
    if (!user.ok()) {
      answers.push_back(absl::StrCat(email, ": sign-in ", user.status().ToString()));
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
    answers.push_back(absl::StrCat(email, " sessions: ", listed.ToString(), " ",
                                         sessions.ShortDebugString()));
    answers.push_back(absl::StrCat(email, " balance: ", balanced.ToString(), " ",
                                         balance.ShortDebugString()));
  }
  return answers;
}


void ExpectJourneysHeldTogether(const kafka::ClientConfig& kafka, const std::string& prefix,
                                int partitions, const load::LoadReport& report,
                                client::Client& client, const std::string& admin_email,
                                const std::string& admin_password) {
  // Wait for the reactions, timers and money of the last journeys.
  std::vector<ServiceEvents> all;
  std::vector<std::string> unsettled;
  for (absl::Time deadline = absl::Now() + absl::Minutes(3); absl::Now() < deadline;) {
    all = ReadAllEvents(kafka, prefix, partitions);
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
  absl::StatusOr<client::User> admin = client.SignIn(admin_email, admin_password);
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

}

std::vector<CommandWaits> MeasureCommandWaits(const kafka::ClientConfig& kafka,
                                              const std::string& prefix, int partitions) {
  std::vector<CommandWaits> all;
  for (const events::EventStream& stream : events::CompiledEventStreams()) {
    const std::string service_prefix = prefix + "helpline." + stream.service + ".";
    // A client that got no answer sends the same command again: a reply
    // answers the latest send before it.
    std::map<std::string, std::vector<absl::Time>> sent;
    for (const kafka::Record& record :
         ::helpline::testing::ReadToEnd(kafka, service_prefix + "commands", partitions)) {
      std::optional<runtime::v1::CommandMeta> meta = CommandMetaOf(record.value);
      if (meta && !meta->reply_to().empty()) sent[meta->command_id()].push_back(record.timestamp);
    }
    std::vector<double> waits;
    for (const kafka::Record& record :
         ::helpline::testing::ReadToEnd(kafka, service_prefix + "replies", partitions)) {
      runtime::v1::Reply reply;
      if (!reply.ParseFromString(record.value)) continue;
      auto found = sent.find(reply.command_id());
      if (found == sent.end()) continue;
      std::optional<absl::Time> latest;
      for (absl::Time at : found->second) {
        if (at <= record.timestamp && (!latest || at > *latest)) latest = at;
      }
      if (latest) waits.push_back(absl::ToDoubleMilliseconds(record.timestamp - *latest));
    }
    std::sort(waits.begin(), waits.end());
    CommandWaits service{stream.service, static_cast<int64_t>(waits.size())};
    if (!waits.empty()) {
      service.p99_ms = waits[std::min(waits.size() - 1, waits.size() * 99 / 100)];
      service.longest_ms = waits.back();
    }
    all.push_back(service);
  }
  return all;
}

load::LoadOptions ChaosLoad(const client::Targets& targets, const std::string& run_tag) {
  load::LoadOptions options;
  options.targets = targets;
  options.admin_email = ::helpline::testing::kPlatformAdminEmail;
  options.admin_password = ::helpline::testing::kPlatformAdminPassword;
  options.run_tag = run_tag;
  options.experts = 6;
  options.people = 6;
  options.journeys_per_second = 3;
  options.retry_for = absl::Minutes(2);
  return options;
}

bool JourneysGoOnAfter(load::LoadGenerator& load, const std::string& change) {
  const int64_t before = load.Completed();
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (load.Completed() < before + 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::cout << absl::FormatTime("%H:%M:%S ", absl::Now(), absl::LocalTimeZone()) << change << ": "
            << load.Completed() << " journeys completed so far" << std::endl;
  return load.Completed() >= before + 3;
}

}  // namespace helpline::chaos
