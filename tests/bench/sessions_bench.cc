// helpline-sessions-bench: sessions' figure, driven by tools/bench.
//
//   helpline-sessions-bench lifecycle --bootstrap-servers H:P --identity H:P
//       --sessions H:P --threads K [--seconds S]
//     K pairs of accounts run complete session lifecycles back to back: a
//     MatchMade event on helpline.matching.events (sessions' reactor creates
//     the session), then JoinSession by both, LeaveSession and EndSession
//     and SubmitReview, over gRPC:
//     {"lifecycles_per_sec", "p50_ms", "p99_ms", "failures"}.
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/kafka/producer.h"
#include "tests/bench/accounts.h"
#include "tests/bench/closed_loop.h"

namespace {

using namespace helpline;  // NOLINT: a benchmark driver
using Stub = sessions::v1::SessionsService::Stub;

struct Flags {
  kafka::ClientConfig client;
  std::string identity;
  std::string sessions;
  int threads = 8;
  double seconds = 10;
};

int Fail(const std::string& message) {
  std::cerr << "helpline-sessions-bench: " << message << "\n";
  return 1;
}

// What matching writes when an expert accepts.
kafka::OutgoingRecord MatchMade(const std::string& match_id, const bench::BenchAccount& person,
                                const bench::BenchAccount& expert) {
  matching::v1::MatchingEvent event;
  runtime::v1::EventMeta& meta = *event.mutable_meta();
  meta.set_event_id(ids::NewUuidV7());
  meta.set_aggregate_id("help-request:" + match_id);
  meta.set_aggregate_version(3);
  *meta.mutable_occurred_at() = ToProtoTime(absl::Now());
  matching::v1::Match& match = *event.mutable_match_made()->mutable_match();
  match.set_match_id(match_id);
  match.set_person_id(person.user_id);
  match.set_expert_id(expert.user_id);
  catalog::v1::PerMinutePrice& rate = *match.mutable_price()->mutable_per_minute();
  rate.mutable_rate()->set_currency_code("EUR");
  rate.mutable_rate()->set_amount_minor(150);
  rate.set_minimum_minutes(5);
  match.set_max_minutes(30);
  match.mutable_max_amount()->set_currency_code("EUR");
  match.mutable_max_amount()->set_amount_minor(4500);
  match.set_category_id("bike-repair");
  return {"helpline.matching.events", std::nullopt, meta.aggregate_id(), event.SerializeAsString(),
          {}, false};
}

int Lifecycles(const Flags& flags) {
  auto identity = identity::v1::IdentityService::NewStub(bench::Channel(flags.identity));
  std::vector<std::pair<bench::BenchAccount, bench::BenchAccount>> pairs;
  for (int i = 0; i < flags.threads; ++i) {
    absl::StatusOr<bench::BenchAccount> person = bench::NewAccount(*identity);
    absl::StatusOr<bench::BenchAccount> expert = bench::NewAccount(*identity);
    if (!person.ok() || !expert.ok()) return Fail("accounts: register or login failed");
    pairs.emplace_back(*person, *expert);
  }
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
      kafka::Producer::Create(flags.client, {});
  if (!producer.ok()) return Fail(producer.status().ToString());
  auto channel = bench::Channel(flags.sessions);
  bench::LoadFigures figures =
      bench::ClosedLoop(flags.threads, absl::Seconds(flags.seconds), [&](int thread) {
        thread_local auto stub = sessions::v1::SessionsService::NewStub(channel);
        const auto& [person, expert] = pairs[thread];
        const std::string id = ids::NewUuidV7();
        if (!(*producer)->ProduceAndWait(MatchMade(id, person, expert)).status.ok()) return false;
        sessions::v1::JoinSessionRequest join;
        join.set_session_id(id);
        sessions::v1::JoinSessionResponse joined;
        // The reactor creates the session a moment after the event.
        absl::Time deadline = absl::Now() + absl::Seconds(30);
        while (!bench::Authorized(person.token, [&](grpc::ClientContext* c) {
                  return stub->JoinSession(c, join, &joined);
                }).ok()) {
          if (absl::Now() > deadline) return false;
          absl::SleepFor(absl::Milliseconds(2));
        }
        sessions::v1::LeaveSessionRequest leave;
        leave.set_session_id(id);
        sessions::v1::LeaveSessionResponse left;
        sessions::v1::EndSessionRequest end;
        end.set_session_id(id);
        sessions::v1::EndSessionResponse ended;
        sessions::v1::SubmitReviewRequest review;
        review.set_session_id(id);
        review.set_stars(5);
        review.set_text("Benchmark review");
        sessions::v1::SubmitReviewResponse reviewed;
        for (absl::Status step : {
                 bench::Authorized(expert.token, [&](grpc::ClientContext* c) {
                   return stub->JoinSession(c, join, &joined);
                 }),
                 bench::Authorized(person.token, [&](grpc::ClientContext* c) {
                   return stub->LeaveSession(c, leave, &left);
                 }),
                 bench::Authorized(expert.token, [&](grpc::ClientContext* c) {
                   return stub->EndSession(c, end, &ended);
                 }),
                 bench::Authorized(person.token, [&](grpc::ClientContext* c) {
                   return stub->SubmitReview(c, review, &reviewed);
                 })}) {
          if (!step.ok()) return false;
        }
        return reviewed.session().has_review();
      });
  std::cout << figures.ToJson("lifecycles_per_sec").dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "lifecycle") return Fail("usage: lifecycle [flags]");
  Flags flags;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--bootstrap-servers") flags.client.bootstrap_servers = value;
    else if (flag == "--identity") flags.identity = value;
    else if (flag == "--sessions") flags.sessions = value;
    else if (flag == "--threads") ok = absl::SimpleAtoi(value, &flags.threads);
    else if (flag == "--seconds") ok = absl::SimpleAtod(value, &flags.seconds);
    else return Fail("unknown flag " + flag);
    if (!ok) return Fail("bad value for " + flag);
  }
  return Lifecycles(flags);
}
