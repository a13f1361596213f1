#include "tests/support/platform.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "services/catalog/domain/catalog_test_log.h"
#include "absl/time/clock.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/auth/key_set.h"
#include "services/runtime/core/ids.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {
namespace {

std::string RandomKey() { return Base64UrlEncode(auth::Ed25519Key::Generate("x").seed()); }

}  // namespace

nlohmann::json Platform::CommonConfig(const std::string& service) const {
  nlohmann::json config = nlohmann::json::object();
  if (options_.clock_rate != 1) {
    config["clock"] = {{"rate", options_.clock_rate}, {"anchor", clock_anchor_}};
  }
  config["kafka"] = KafkaConfigJson(StackKafka(StackDir(), service));
  if (service == "catalog" || service == "matching" || service == "sessions") {
    config["personal"] = {{"key_encryption_key", personal_key_}};
  }
  // HL_KAFKA_DEBUG=cgrp,eos puts librdkafka's debug lines of those contexts
  // into each service's log (for a test that fails only now and then).
  if (const char* debug = std::getenv("HL_KAFKA_DEBUG"); debug != nullptr && *debug != '\0') {
    config["kafka"]["debug"] = debug;
    config["log"]["level"] = "debug";
  }
  return config;
}

std::string Platform::StackDir() const {
  return options_.stack_dir.empty() ? TestStackDir() : options_.stack_dir;
}

::testing::AssertionResult Platform::Start(const std::string& name, Options options) {
  options_ = std::move(options);
  clock_anchor_ = absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone());
  personal_key_ = RandomKey();
  prefix_ = UniqueName(name) + ".";
  dir_ = ::testing::TempDir() + UniqueName(name);
  std::system(absl::StrCat("mkdir -p '", dir_, "'").c_str());
  for (const char* service : {"identity", "catalog", "matching", "sessions", "payments"}) {
    CreateServiceTopics(StackKafka(StackDir(), "admin"), service, prefix_, options_.partitions);
  }
  std::string keys_file = dir_ + "/signing-keys.json";
  {
    std::ofstream out(keys_file);
    out << auth::SigningKeySet::GenerateJson({{"k1", "active"}});
  }
  nlohmann::json identity_config = {
      {"topics", {{"prefix", prefix_}}},
      {"identity",
       {{"signing_keys_file", keys_file},
        {"key_encryption_key", RandomKey()},
        {"email_hash_key", RandomKey()},
        {"argon2_passes", 1},
        {"argon2_memory_mib", 8},
        {"argon2_allow_weak", true},
        {"requests_per_second_per_caller", 1000},
        {"logins_per_minute_per_account", 1000}}},
      {"admin", {{"email", kPlatformAdminEmail}, {"password", kPlatformAdminPassword}}}};
  identity_config.merge_patch(options_.identity_config);
  identity_config.merge_patch(CommonConfig("identity"));
  if (auto started = StartReplicas("identity", IDENTITY_BINARY_PATH, identity_config); !started) {
    return started;
  }
  const std::string identity_target = Target("identity");
  nlohmann::json catalog_config = {{"topics", {{"prefix", prefix_}}},
                                   {"auth", {{"identity_target", identity_target}}},
                                   {"catalog", {{"requests_per_second_per_caller", 1000}}}};
  catalog_config.merge_patch(options_.catalog_config);
  catalog_config.merge_patch(CommonConfig("catalog"));
  if (auto started = StartReplicas("catalog", CATALOG_BINARY_PATH, catalog_config); !started) {
    return started;
  }
  if (options_.matching) {
    if (auto started = StartMatching(identity_target); !started) return started;
  }
  if (options_.sessions) {
    if (auto started = StartSessions(identity_target); !started) return started;
  }
  if (options_.payments) return StartPayments(identity_target);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Platform::StartMatching(const std::string& identity_target) {
  redis::ClientOptions redis = options_.redis.has_value() ? *options_.redis : TestRedis();
  nlohmann::json matching_config = {
      {"topics", {{"prefix", prefix_}}},
      {"auth", {{"identity_target", identity_target}}},
      {"redis", {{"host", redis.host}, {"port", redis.port}}},
      {"matching",
       {{"presence_key_prefix", prefix_ + "presence:"},
        {"requests_per_second_per_caller", 1000}}}};
  matching_config.merge_patch(options_.matching_config);
  matching_config.merge_patch(CommonConfig("matching"));
  return StartReplicas("matching", MATCHING_BINARY_PATH, matching_config);
}

::testing::AssertionResult Platform::StartSessions(const std::string& identity_target) {
  nlohmann::json sessions_config = {
      {"topics", {{"prefix", prefix_}}},
      {"auth", {{"identity_target", identity_target}}},
      {"sessions",
       {{"livekit_api_key", "test-key"},
        {"livekit_api_secret", kPlatformLivekitSecret},
        {"requests_per_second_per_caller", 1000}}}};
  sessions_config.merge_patch(options_.sessions_config);
  sessions_config.merge_patch(CommonConfig("sessions"));
  return StartReplicas("sessions", SESSIONS_BINARY_PATH, sessions_config);
}

::testing::AssertionResult Platform::StartPayments(const std::string& identity_target) {
  psp_ = std::make_unique<ServiceProcess>(
      PSP_SANDBOX_BINARY_PATH, "psp-sandbox",
      nlohmann::json{{"kafka", nullptr},
                     {"sandbox", {{"journal_file", dir_ + "/psp-journal.jsonl"}}}},
      dir_);
  if (auto started = psp_->Start(); !started) return started;
  nlohmann::json payments_config = {
      {"topics", {{"prefix", prefix_}}},
      {"auth", {{"identity_target", identity_target}}},
      {"payments",
       {{"processor_target", absl::StrCat("127.0.0.1:", psp_->port())},
        {"processor_timeout", "1s"},
        {"processor_retry_after", "500ms"},
        {"worker_interval", "50ms"},
        {"requests_per_second_per_caller", 1000}}}};
  payments_config.merge_patch(options_.payments_config);
  payments_config.merge_patch(CommonConfig("payments"));
  return StartReplicas("payments", PAYMENTS_BINARY_PATH, payments_config);
}

::testing::AssertionResult Platform::StartReplicas(const std::string& service,
                                                   const std::string& binary,
                                                   const nlohmann::json& config) {
  std::vector<std::unique_ptr<ServiceProcess>>& replicas = replicas_[service];
  for (int i = 0; i < options_.replicas; ++i) {
    std::string name = options_.replicas == 1 ? service : absl::StrCat(service, "-", i);
    nlohmann::json own = config;
    own["processor"] = {{"replica", name}};
    replicas.push_back(std::make_unique<ServiceProcess>(binary, name, own, dir_));
    if (auto started = replicas.back()->Start(); !started) return started;
  }
  return ::testing::AssertionSuccess();
}

std::vector<ServiceProcess*> Platform::Replicas(const std::string& service) {
  std::vector<ServiceProcess*> out;
  for (auto& replica : replicas_.at(service)) out.push_back(replica.get());
  return out;
}

std::string Platform::Target(const std::string& service) {
  const auto& replicas = replicas_.at(service);
  if (replicas.size() == 1) return absl::StrCat("127.0.0.1:", replicas[0]->port());
  std::string target = "ipv4:";
  for (size_t i = 0; i < replicas.size(); ++i) {
    absl::StrAppend(&target, i == 0 ? "" : ",", "127.0.0.1:", replicas[i]->port());
  }
  return target;
}

bool Platform::Stop() {
  bool clean = true;
  for (const char* service : {"payments", "sessions", "matching", "catalog", "identity"}) {
    auto found = replicas_.find(service);
    if (found == replicas_.end()) continue;
    for (auto& replica : found->second) clean = replica->Stop() && clean;
    if (std::string(service) == "payments" && psp_ != nullptr) {
      clean = psp_->Stop() && clean;
      psp_.reset();
    }
  }
  replicas_.clear();
  return clean;
}

absl::Time Platform::NextMondayAtTen() {
  absl::TimeZone berlin;
  EXPECT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  absl::CivilDay day = absl::ToCivilDay(absl::Now() + absl::Hours(24), berlin);
  while (absl::GetWeekday(day) != absl::Weekday::monday) ++day;
  return absl::FromCivil(absl::CivilMinute(day.year(), day.month(), day.day(), 10, 0), berlin);
}

Account Platform::NewAccount(identity::v1::AccountType type, std::string email) {
  auto stub = identity::v1::IdentityService::NewStub(LocalChannel(identity().port()));
  identity::v1::RegisterRequest request;
  request.set_request_id(ids::NewUuidV7());
  request.set_email(email.empty() ? UniqueName("user") + "@example.org" : email);
  request.set_password(kPlatformPassword);
  request.set_display_name("Someone");
  request.set_account_type(type);
  identity::v1::RegisterResponse registered;
  grpc::ClientContext context;
  grpc::Status status = stub->Register(&context, request, &registered);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return Login(request.email());
}

Account Platform::Login(const std::string& email, const std::string& password) {
  auto stub = identity::v1::IdentityService::NewStub(LocalChannel(identity().port()));
  identity::v1::LoginRequest request;
  request.set_email(email);
  request.set_password(password);
  identity::v1::LoginResponse session;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  grpc::Status status;
  do {
    grpc::ClientContext context;
    status = stub->Login(&context, request, &session);
    if (!status.ok()) absl::SleepFor(absl::Milliseconds(200));
  } while (!status.ok() && absl::Now() < deadline);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return {session.user_id(), session.tokens().access_token(), email};
}

Account Platform::LoginWithRole(const std::string& email, const std::string& role) {
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (true) {
    Account account = Login(email);
    absl::StatusOr<auth::ParsedToken> token = auth::ParseToken(account.access_token);
    if (token.ok() && token->claims.contains("roles")) {
      for (const auto& granted : token->claims["roles"]) {
        if (granted == role) return account;
      }
    }
    if (absl::Now() > deadline) {
      ADD_FAILURE() << email << " never got the role " << role;
      return account;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

Account Platform::PublishedExpert(const catalog::v1::ProfileContent& content) {
  using Stub = catalog::v1::CatalogService::Stub;
  auto stub = catalog::v1::CatalogService::NewStub(LocalChannel(catalog().port()));
  Account expert = NewAccount();
  catalog::v1::CreateProfileRequest create;
  create.set_request_id(ids::NewUuidV7());
  *create.mutable_content() = content;
  catalog::v1::CreateProfileResponse created;
  EXPECT_TRUE(Call(*stub, &Stub::CreateProfile, expert, create, &created).ok());
  catalog::v1::SubmitProfileRequest submit;
  submit.set_request_id(ids::NewUuidV7());
  catalog::v1::SubmitProfileResponse submitted;
  EXPECT_TRUE(Call(*stub, &Stub::SubmitProfile, expert, submit, &submitted).ok());
  catalog::v1::ApproveProfileRequest approve;
  approve.set_request_id(ids::NewUuidV7());
  approve.set_expert_id(expert.user_id);
  catalog::v1::ApproveProfileResponse approved;
  EXPECT_TRUE(Call(*stub, &Stub::ApproveProfile, Admin(), approve, &approved).ok());
  catalog::v1::PublishProfileRequest publish;
  publish.set_request_id(ids::NewUuidV7());
  catalog::v1::PublishProfileResponse published;
  EXPECT_TRUE(Call(*stub, &Stub::PublishProfile, expert, publish, &published).ok());
  return LoginWithRole(expert.email, "expert");
}

absl::Status Platform::Heartbeat(const Account& expert, matching::v1::PresenceStatus status) {
  auto stub = matching::v1::MatchingService::NewStub(LocalChannel(matching().port()));
  matching::v1::HeartbeatRequest request;
  request.set_status(status);
  matching::v1::HeartbeatResponse response;
  return Call(*stub, &matching::v1::MatchingService::Stub::Heartbeat, expert, request, &response);
}

std::string Platform::NewCategory() {
  std::string id = UniqueName("c");
  auto catalog_stub = catalog::v1::CatalogService::NewStub(LocalChannel(catalog().port()));
  catalog::v1::CreateCategoryRequest request;
  request.set_request_id(ids::NewUuidV7());
  request.set_category_id(id);
  request.set_name(id);
  catalog::v1::CreateCategoryResponse response;
  absl::Status created = Call(*catalog_stub, &catalog::v1::CatalogService::Stub::CreateCategory,
                              Admin(), request, &response);
  EXPECT_TRUE(created.ok()) << created;
  return id;
}

Account Platform::OnlineExpert(const std::string& category, int64_t rate) {
  Account expert =
      PublishedExpert(catalog::testing::ValidContent("Help with " + category, category, rate));
  EXPECT_TRUE(Heartbeat(expert, matching::v1::PRESENCE_STATUS_AVAILABLE).ok());
  return expert;
}

matching::v1::RequestHelpRequest Platform::HelpRequestFor(const std::string& category,
                                                          int max_minutes) {
  matching::v1::RequestHelpRequest request;
  request.set_request_id(ids::NewUuidV7());
  request.set_category_id(category);
  request.set_language("de");
  request.set_description("My gears slip on the big cog");
  request.mutable_budget()->mutable_max_per_minute()->set_currency_code("EUR");
  request.mutable_budget()->mutable_max_per_minute()->set_amount_minor(200);
  request.set_max_minutes(max_minutes);
  return request;
}

matching::v1::HelpRequest Platform::AskForHelp(const Account& person,
                                               const matching::v1::RequestHelpRequest& request) {
  auto stub = matching::v1::MatchingService::NewStub(LocalChannel(matching().port()));
  matching::v1::RequestHelpResponse response;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::Status status;
  do {
    status = Call(*stub, &matching::v1::MatchingService::Stub::RequestHelp, person, request,
                  &response);
    if (status.code() != absl::StatusCode::kInvalidArgument) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(status.ok()) << status;
  return response.help_request();
}

matching::v1::Match Platform::MatchNow(const Account& person, const Account& expert,
                                       const std::string& category) {
  return MatchWith(person, expert, HelpRequestFor(category));
}

matching::v1::Match Platform::MatchWith(const Account& person, const Account& expert,
                                        const matching::v1::RequestHelpRequest& request) {
  using Stub = matching::v1::MatchingService::Stub;
  auto stub = matching::v1::MatchingService::NewStub(LocalChannel(matching().port()));
  matching::v1::HelpRequest asked = AskForHelp(person, request);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  matching::v1::GetRequestRequest get;
  get.set_help_request_id(asked.help_request_id());
  matching::v1::GetRequestResponse got;
  do {
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_TRUE(Call(*stub, &Stub::GetRequest, person, get, &got).ok());
  } while (got.help_request().status() != matching::v1::HELP_REQUEST_STATUS_OFFERED &&
           absl::Now() < deadline);
  EXPECT_EQ(got.help_request().offer().expert_id(), expert.user_id);
  matching::v1::AcceptOfferRequest accept;
  accept.set_offer_id(got.help_request().offer().offer_id());
  matching::v1::AcceptOfferResponse accepted;
  absl::Status status = Call(*stub, &Stub::AcceptOffer, expert, accept, &accepted);
  EXPECT_TRUE(status.ok()) << status;
  return accepted.help_request().match();
}

}  // namespace helpline::testing
