// helpline-matching-bench: matching's figures, driven by tools/bench.
//
//   helpline-matching-bench heartbeat --identity H:P --catalog H:P --matching H:P
//       --admin-password P --threads K [--seconds S]
//     makes one approved expert (register, profile, admin approval), then
//     sends Heartbeat from K clients as fast as they go:
//     {"heartbeats_per_sec", "p50_ms", "p99_ms", "failures"}.
#include <iostream>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "services/runtime/core/ids.h"
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
};

int Fail(const std::string& message) {
  std::cerr << "helpline-matching-bench: " << message << "\n";
  return 1;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& target) {
  return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
}

absl::StatusOr<std::string> Login(identity::v1::IdentityService::Stub& identity,
                                  const std::string& email, const std::string& password) {
  identity::v1::LoginRequest request;
  request.set_email(email);
  request.set_password(password);
  identity::v1::LoginResponse response;
  grpc::ClientContext context;
  grpc::Status status = identity.Login(&context, request, &response);
  if (!status.ok()) return absl::UnauthenticatedError(status.error_message());
  return response.tokens().access_token();
}

template <class Call>
absl::Status Authorized(const std::string& token, Call call) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token);
  grpc::Status status = call(&context);
  if (!status.ok()) return absl::UnknownError(status.error_message());
  return absl::OkStatus();
}

// A new account with an approved profile, signed in again once identity has
// granted it the role "expert".
absl::StatusOr<std::string> ApprovedExpert(const Flags& flags) {
  auto identity = identity::v1::IdentityService::NewStub(Channel(flags.identity));
  auto catalog = catalog::v1::CatalogService::NewStub(Channel(flags.catalog));
  const std::string email = absl::StrCat("bench-", ids::NewUuidV7(), "@helpline.test");
  const std::string password = "benchmark-password-1";
  identity::v1::RegisterRequest registration;
  registration.set_request_id(ids::NewUuidV7());
  registration.set_email(email);
  registration.set_password(password);
  registration.set_display_name("Bench expert");
  registration.set_account_type(identity::v1::ACCOUNT_TYPE_PERSON);
  identity::v1::RegisterResponse registered;
  grpc::ClientContext register_context;
  if (!identity->Register(&register_context, registration, &registered).ok()) {
    return absl::UnknownError("register failed");
  }
  absl::StatusOr<std::string> person = Login(*identity, email, password);
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
  approve.set_expert_id(registered.user_id());
  catalog::v1::ApproveProfileResponse approved;
  for (absl::Status step :
       {Authorized(*person, [&](grpc::ClientContext* c) { return catalog->CreateProfile(c, create, &created); }),
        Authorized(*person, [&](grpc::ClientContext* c) { return catalog->SubmitProfile(c, submit, &submitted); }),
        Authorized(*admin, [&](grpc::ClientContext* c) { return catalog->ApproveProfile(c, approve, &approved); })}) {
    if (!step.ok()) return step;
  }
  auto matching = matching::v1::MatchingService::NewStub(Channel(flags.matching));
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> expert = Login(*identity, email, password);
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "heartbeat") return Fail("usage: heartbeat [flags]");
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
    else return Fail("unknown flag " + flag);
    if (!ok) return Fail("bad value for " + flag);
  }
  return Heartbeats(flags);
}
