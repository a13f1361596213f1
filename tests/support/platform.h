#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/errors.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/redis/redis_client.h"
#include "tests/support/service_process.h"

// Helpline's services as processes on the test run's Kafka and Redis, on
// topics of their own, and what a frontend does with them (accounts,
// tokens, approved experts), for the services' integration tests.
namespace helpline::testing {

struct Account {
  std::string user_id;
  std::string access_token;
  std::string email;
};

inline constexpr char kPlatformAdminEmail[] = "root@platform.test";
inline constexpr char kPlatformAdminPassword[] = "bootstrap-password-1";
inline constexpr char kPlatformPassword[] = "a-long-enough-password";

class Platform {
 public:
  struct Options {
    int partitions = 3;
    bool matching = true;
    bool sessions = false;
    // The sandbox payment processor and payments.
    bool payments = false;
    // Merged into each service's config.
    nlohmann::json identity_config = nlohmann::json::object();
    nlohmann::json catalog_config = nlohmann::json::object();
    nlohmann::json matching_config = nlohmann::json::object();
    nlohmann::json sessions_config = nlohmann::json::object();
    nlohmann::json payments_config = nlohmann::json::object();
    // Every service's clock runs this much faster, from the start (clock.rate).
    double clock_rate = 1;
    // A Kafka and a Redis of the test's own (one it restarts), instead of
    // the test run's: the folder of the stack (LocalStack::dir()), and Redis.
    std::string stack_dir;
    std::optional<redis::ClientOptions> redis;
    // Replicas of each of the five services (processes "<service>-<i>" with
    // processor.replica of the same name); one sandbox processor.
    int replicas = 1;
  };

  // Creates the topics and starts identity, catalog and those of matching,
  // sessions and payments (with the sandbox processor) the options ask for.
  ::testing::AssertionResult Start(const std::string& name, Options options);
  // SIGTERM to each; true if all shut down cleanly.
  bool Stop();

  // The first replica of each.
  ServiceProcess& identity() { return *replicas_.at("identity")[0]; }
  ServiceProcess& catalog() { return *replicas_.at("catalog")[0]; }
  ServiceProcess& matching() { return *replicas_.at("matching")[0]; }
  ServiceProcess& sessions() { return *replicas_.at("sessions")[0]; }
  ServiceProcess& payments() { return *replicas_.at("payments")[0]; }
  ServiceProcess& psp() { return *psp_; }
  // Every replica of a service ("identity" ...), the first first.
  std::vector<ServiceProcess*> Replicas(const std::string& service);
  // A gRPC target that reaches every replica of the service.
  std::string Target(const std::string& service);
  const std::string& prefix() const { return prefix_; }
  int partitions() const { return options_.partitions; }

  Account NewAccount(identity::v1::AccountType type = identity::v1::ACCOUNT_TYPE_PERSON,
                     std::string email = "");
  Account Login(const std::string& email, const std::string& password = kPlatformPassword);
  Account Admin() { return Login(kPlatformAdminEmail, kPlatformAdminPassword); }
  // Signs in again until the access token carries `role` (identity grants
  // roles by reacting to events).
  Account LoginWithRole(const std::string& email, const std::string& role);
  // A new account with `content` as its profile, approved and published,
  // signed in with the expert role.
  Account PublishedExpert(const catalog::v1::ProfileContent& content);
  // Next Monday 10:00 in Berlin, at least a day ahead: inside the hours of
  // catalog::testing::ValidContent.
  static absl::Time NextMondayAtTen();

  // Calls `method` on `stub` as `caller` (no token when its token is empty).
  template <class Stub, class Request, class Response, class Method>
  static absl::Status Call(Stub& stub, Method method, const Account& caller,
                           const Request& request, Response* response) {
    grpc::ClientContext context;
    if (!caller.access_token.empty()) {
      context.AddMetadata("authorization", "Bearer " + caller.access_token);
    }
    return errors::FromGrpc((stub.*method)(&context, request, response));
  }

  absl::Status Heartbeat(const Account& expert, matching::v1::PresenceStatus status);

  // A top-level category of the caller's own (so other tests' experts stay out).
  std::string NewCategory();
  // A published expert in `category` (per minute at `rate`, German and
  // English), online and available.
  Account OnlineExpert(const std::string& category, int64_t rate = 150);
  // A request for help in `category`: German, a budget of 200 per minute.
  static matching::v1::RequestHelpRequest HelpRequestFor(const std::string& category,
                                                         int max_minutes = 20);
  // `person` asks, retrying while matching has not seen the category yet;
  // the request as answered.
  matching::v1::HelpRequest AskForHelp(const Account& person,
                                       const matching::v1::RequestHelpRequest& request);
  // Asks as `person` and accepts as `expert` (the only expert online in the
  // category); the match.
  matching::v1::Match MatchNow(const Account& person, const Account& expert,
                               const std::string& category);
  // The same for `request` (which must bring `expert`'s offer).
  matching::v1::Match MatchWith(const Account& person, const Account& expert,
                                const matching::v1::RequestHelpRequest& request);

 private:
  ::testing::AssertionResult StartMatching(const std::string& identity_target);
  ::testing::AssertionResult StartSessions(const std::string& identity_target);
  ::testing::AssertionResult StartPayments(const std::string& identity_target);
  // Starts options_.replicas processes of one service with this config.
  ::testing::AssertionResult StartReplicas(const std::string& service, const std::string& binary,
                                           const nlohmann::json& config);
  // What every service's config gets: the clock, and the Kafka of the
  // options as the service's own principal.
  nlohmann::json CommonConfig(const std::string& service) const;
  std::string StackDir() const;

  Options options_;
  std::string clock_anchor_;
  // Wraps the keys catalog, matching and sessions seal people's words with.
  std::string personal_key_;
  std::string prefix_;
  std::string dir_;
  std::map<std::string, std::vector<std::unique_ptr<ServiceProcess>>> replicas_;
  std::unique_ptr<ServiceProcess> psp_;
};

// Reads until `check` holds of what was read or `wait` passed; the last read.
template <class T>
T Eventually(const std::function<T()>& read, const std::function<bool(const T&)>& check,
             absl::Duration wait = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + wait;
  T value = read();
  while (!check(value) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    value = read();
  }
  return value;
}

// The LiveKit API secret the platform's sessions service signs room tokens with.
inline constexpr char kPlatformLivekitSecret[] = "test-livekit-secret-of-32-bytes!";

}  // namespace helpline::testing
