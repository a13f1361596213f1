// helpline-matching-bench: matching's figures, driven by tools/bench.
//
//   helpline-matching-bench heartbeat --identity H:P --catalog H:P --matching H:P
//       --admin-password P --threads K [--seconds S]
//     makes one approved expert (register, profile, admin approval), then
//     sends Heartbeat from K clients as fast as they go:
//     {"heartbeats_per_sec", "p50_ms", "p99_ms", "failures"}.
//
//   helpline-matching-bench e2e --identity H:P --catalog H:P --matching H:P
//       --admin-password P --experts N --rate R [--seconds S]
//     makes N published experts who stay online and accept every offer at
//     once, then asks for help R times a second (open loop) and follows each
//     request on WatchRequest until it is matched:
//     {"requests", "matched", "p50_ms", "p99_ms" (RequestHelp sent to MATCHED
//      seen), "write_p50_ms", "write_p99_ms" (the RequestHelp call alone),
//      "failures"}.
#include <atomic>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "services/runtime/core/ids.h"
#include "tests/bench/accounts.h"
#include "tests/bench/closed_loop.h"

namespace {

using namespace helpline;  // NOLINT: a benchmark driver

struct Flags {
  std::string identity;
  std::string catalog;
  std::string matching;
  std::string admin_password;
  int threads = 8;
  double seconds = 10;
  int experts = 16;
  double rate = 4;
};

int Fail(const std::string& message) {
  std::cerr << "helpline-matching-bench: " << message << "\n";
  return 1;
}

using bench::Authorized;
using bench::Channel;
using bench::Login;

// A new account with an approved profile, signed in again once identity has
// granted it the role "expert".
absl::StatusOr<std::string> ApprovedExpert(const Flags& flags) {
  auto identity = identity::v1::IdentityService::NewStub(Channel(flags.identity));
  auto catalog = catalog::v1::CatalogService::NewStub(Channel(flags.catalog));
  absl::StatusOr<bench::BenchAccount> account = bench::NewAccount(*identity);
  if (!account.ok()) return account.status();
  const std::string& email = account->email;
  absl::StatusOr<std::string> person = account->token;
  absl::StatusOr<std::string> admin = Login(*identity, "admin@helpline.local", flags.admin_password);
  if (!person.ok() || !admin.ok()) return absl::UnauthenticatedError("login failed");

  catalog::v1::CreateProfileRequest create;
  create.set_request_id(ids::NewUuidV7());
  catalog::v1::ProfileContent& content = *create.mutable_content();
  content.set_public_name("Bench");
  content.set_headline("Benchmark expert");
  content.add_category_ids("bike-repair");
  content.add_languages("en");
  content.mutable_price()->mutable_per_minute()->mutable_rate()->set_currency_code("EUR");
  content.mutable_price()->mutable_per_minute()->mutable_rate()->set_amount_minor(100);
  content.mutable_price()->mutable_per_minute()->set_minimum_minutes(5);
  content.mutable_availability()->set_time_zone("Europe/Berlin");
  catalog::v1::CreateProfileResponse created;
  catalog::v1::SubmitProfileRequest submit;
  submit.set_request_id(ids::NewUuidV7());
  catalog::v1::SubmitProfileResponse submitted;
  catalog::v1::ApproveProfileRequest approve;
  approve.set_request_id(ids::NewUuidV7());
  approve.set_expert_id(account->user_id);
  catalog::v1::ApproveProfileResponse approved;
  catalog::v1::PublishProfileRequest publish;
  publish.set_request_id(ids::NewUuidV7());
  catalog::v1::PublishProfileResponse published;
  for (absl::Status step :
       {Authorized(*person, [&](grpc::ClientContext* c) { return catalog->CreateProfile(c, create, &created); }),
        Authorized(*person, [&](grpc::ClientContext* c) { return catalog->SubmitProfile(c, submit, &submitted); }),
        Authorized(*admin, [&](grpc::ClientContext* c) { return catalog->ApproveProfile(c, approve, &approved); }),
        Authorized(*person, [&](grpc::ClientContext* c) { return catalog->PublishProfile(c, publish, &published); })}) {
    if (!step.ok()) return step;
  }
  auto matching = matching::v1::MatchingService::NewStub(Channel(flags.matching));
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> expert = Login(*identity, email);
    if (!expert.ok()) return expert.status();
    matching::v1::HeartbeatRequest beat;
    beat.set_status(matching::v1::PRESENCE_STATUS_AVAILABLE);
    matching::v1::HeartbeatResponse answer;
    if (Authorized(*expert, [&](grpc::ClientContext* c) { return matching->Heartbeat(c, beat, &answer); })
            .ok()) {
      return *expert;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError("the expert role never arrived");
}

int Heartbeats(const Flags& flags) {
  absl::StatusOr<std::string> token = ApprovedExpert(flags);
  if (!token.ok()) return Fail(token.status().ToString());
  auto channel = Channel(flags.matching);
  bench::LoadFigures figures =
      bench::ClosedLoop(flags.threads, absl::Seconds(flags.seconds), [&](int) {
        thread_local auto stub = matching::v1::MatchingService::NewStub(channel);
        matching::v1::HeartbeatRequest request;
        request.set_status(matching::v1::PRESENCE_STATUS_AVAILABLE);
        matching::v1::HeartbeatResponse response;
        grpc::ClientContext context;
        context.AddMetadata("authorization", "Bearer " + *token);
        return stub->Heartbeat(&context, request, &response).ok();
      });
  std::cout << figures.ToJson("heartbeats_per_sec").dump() << std::endl;
  return 0;
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(q * values.size()))];
}

// An expert app: online, accepting every offer the moment it arrives.
void AcceptEverything(const std::string& token, const std::string& target,
                      const std::atomic<bool>& stop) {
  auto stub = matching::v1::MatchingService::NewStub(Channel(target));
  std::thread heartbeat([&] {
    while (!stop.load()) {
      matching::v1::HeartbeatRequest beat;
      beat.set_status(matching::v1::PRESENCE_STATUS_AVAILABLE);
      matching::v1::HeartbeatResponse answer;
      Authorized(token, [&](grpc::ClientContext* c) { return stub->Heartbeat(c, beat, &answer); })
          .IgnoreError();
      for (int i = 0; i < 20 && !stop.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
    }
  });
  while (!stop.load()) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    auto reader = stub->WatchOffers(&context, matching::v1::WatchOffersRequest());
    matching::v1::WatchOffersResponse update;
    while (reader->Read(&update)) {
      if (!update.has_offer()) continue;
      matching::v1::AcceptOfferRequest accept;
      accept.set_offer_id(update.offer().offer_id());
      matching::v1::AcceptOfferResponse accepted;
      Authorized(token, [&](grpc::ClientContext* c) { return stub->AcceptOffer(c, accept, &accepted); })
          .IgnoreError();
    }
    reader->Finish().ok();
  }
  heartbeat.join();
}

int EndToEnd(const Flags& flags) {
  std::vector<std::string> experts;
  for (int i = 0; i < flags.experts; ++i) {
    absl::StatusOr<std::string> token = ApprovedExpert(flags);
    if (!token.ok()) return Fail(token.status().ToString());
    experts.push_back(*token);
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> apps;
  for (const std::string& token : experts) {
    apps.emplace_back([&, token] { AcceptEverything(token, flags.matching, stop); });
  }
  // People ask with the experts' accounts (any signed-in user may ask; an
  // expert is never offered their own request).
  absl::SleepFor(absl::Seconds(2));
  std::mutex mutex;
  std::vector<double> latencies;
  std::vector<double> writes;
  std::atomic<int64_t> failures{0};
  const int requests = static_cast<int>(flags.rate * flags.seconds);
  std::vector<std::thread> people;
  absl::Time start = absl::Now();
  auto channel = Channel(flags.matching);
  for (int k = 0; k < requests; ++k) {
    absl::Time at = start + absl::Seconds(k / flags.rate);
    absl::SleepFor(at - absl::Now());
    people.emplace_back([&, k] {
      auto stub = matching::v1::MatchingService::NewStub(channel);
      const std::string& token = experts[k % experts.size()];
      matching::v1::RequestHelpRequest ask;
      ask.set_request_id(ids::NewUuidV7());
      ask.set_category_id("bike-repair");
      ask.set_language("en");
      ask.set_description("Benchmark: my chain keeps falling off");
      ask.mutable_budget()->mutable_max_per_minute()->set_currency_code("EUR");
      ask.mutable_budget()->mutable_max_per_minute()->set_amount_minor(500);
      matching::v1::RequestHelpResponse asked;
      absl::Time begin = absl::Now();
      if (!Authorized(token, [&](grpc::ClientContext* c) { return stub->RequestHelp(c, ask, &asked); })
               .ok()) {
        ++failures;
        return;
      }
      double write_ms = absl::ToDoubleMilliseconds(absl::Now() - begin);
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Bearer " + token);
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
      matching::v1::WatchRequestRequest watch;
      watch.set_help_request_id(asked.help_request().help_request_id());
      auto reader = stub->WatchRequest(&context, watch);
      matching::v1::WatchRequestResponse update;
      bool matched = false;
      while (!matched && reader->Read(&update)) {
        matched = update.help_request().status() == matching::v1::HELP_REQUEST_STATUS_MATCHED;
      }
      double total_ms = absl::ToDoubleMilliseconds(absl::Now() - begin);
      if (!matched) context.TryCancel();
      reader->Finish().ok();
      std::lock_guard<std::mutex> lock(mutex);
      writes.push_back(write_ms);
      if (matched) {
        latencies.push_back(total_ms);
      } else {
        ++failures;
      }
    });
  }
  for (std::thread& person : people) person.join();
  stop.store(true);
  for (std::thread& app : apps) app.join();
  nlohmann::json figures = {{"requests", requests},
                            {"matched", latencies.size()},
                            {"p50_ms", Percentile(latencies, 0.5)},
                            {"p99_ms", Percentile(latencies, 0.99)},
                            {"write_p50_ms", Percentile(writes, 0.5)},
                            {"write_p99_ms", Percentile(writes, 0.99)},
                            {"failures", failures.load()}};
  std::cout << figures.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc < 2 ? "" : argv[1];
  if (mode != "heartbeat" && mode != "e2e") return Fail("usage: heartbeat|e2e [flags]");
  Flags flags;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--identity") flags.identity = value;
    else if (flag == "--catalog") flags.catalog = value;
    else if (flag == "--matching") flags.matching = value;
    else if (flag == "--admin-password") flags.admin_password = value;
    else if (flag == "--threads") ok = absl::SimpleAtoi(value, &flags.threads);
    else if (flag == "--seconds") ok = absl::SimpleAtod(value, &flags.seconds);
    else if (flag == "--experts") ok = absl::SimpleAtoi(value, &flags.experts);
    else if (flag == "--rate") ok = absl::SimpleAtod(value, &flags.rate);
    else return Fail("unknown flag " + flag);
    if (!ok) return Fail("bad value for " + flag);
  }
  return mode == "e2e" ? EndToEnd(flags) : Heartbeats(flags);
}
