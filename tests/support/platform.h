#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/errors.h"
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
    // Merged into each service's config.
    nlohmann::json catalog_config = nlohmann::json::object();
    nlohmann::json matching_config = nlohmann::json::object();
  };

  // Creates the topics and starts identity, catalog and (optionally) matching.
  ::testing::AssertionResult Start(const std::string& name, Options options);
  // SIGTERM to each; true if all shut down cleanly.
  bool Stop();

  ServiceProcess& identity() { return *identity_; }
  ServiceProcess& catalog() { return *catalog_; }
  ServiceProcess& matching() { return *matching_; }
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

 private:
  Options options_;
  std::string prefix_;
  std::string dir_;
  std::unique_ptr<ServiceProcess> identity_;
  std::unique_ptr<ServiceProcess> catalog_;
  std::unique_ptr<ServiceProcess> matching_;
};

}  // namespace helpline::testing
