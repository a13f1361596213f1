#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "helpline/payments/v1/payments.grpc.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "services/runtime/core/errors.h"

// What a frontend does to reach Helpline: the five services' stubs, calls
// with a bearer token, and signed-in users whose tokens are refreshed
// before they expire. Used by the demo and the end-to-end test.
namespace helpline::client {

struct Targets {
  std::string identity;
  std::string catalog;
  std::string matching;
  std::string sessions;
  std::string payments;
  // The local stack's: 127.0.0.1:<base + 1 ... 5>.
  static Targets Local(int base = 7000);
};

// A signed-in user.
struct User {
  std::string email;
  std::string password;
  std::string user_id;
  std::string access_token;
  std::string refresh_token;
  absl::Time signed_in = absl::InfinitePast();  // real time of the tokens
};

// Whether the access token (not verified: the caller got it from identity)
// grants `role`.
bool HasRole(const std::string& access_token, const std::string& role);

class Client {
 public:
  // Access tokens are refreshed halfway through their life (15 minutes of
  // wall-clock time, whatever the services' clock rate).
  explicit Client(const Targets& targets);

  identity::v1::IdentityService::Stub& identity() { return *identity_; }
  catalog::v1::CatalogService::Stub& catalog() { return *catalog_; }
  matching::v1::MatchingService::Stub& matching() { return *matching_; }
  sessions::v1::SessionsService::Stub& sessions() { return *sessions_; }
  payments::v1::PaymentsService::Stub& payments() { return *payments_; }

  // Calls `method` with `token` as bearer (none when empty).
  template <class Stub, class Request, class Response, class Method>
  static absl::Status Call(Stub& stub, Method method, const std::string& token,
                           const Request& request, Response* response,
                           absl::Duration timeout = absl::Seconds(15)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    return errors::FromGrpc((stub.*method)(&context, request, response));
  }

  // Signs in with the user's email and password.
  absl::StatusOr<User> SignIn(const std::string& email, const std::string& password);
  // The user's access token, refreshed first when it is half way to expiry.
  absl::StatusOr<std::string> Token(User& user);
  // Signs in again until the user's token carries `role` (granted by a
  // reaction, e.g. "expert" after catalog's approval), for up to `wait`.
  absl::StatusOr<User> WaitForRole(User user, const std::string& role,
                                   absl::Duration wait = absl::Seconds(60));

 private:
  absl::Duration refresh_after_;
  std::unique_ptr<identity::v1::IdentityService::Stub> identity_;
  std::unique_ptr<catalog::v1::CatalogService::Stub> catalog_;
  std::unique_ptr<matching::v1::MatchingService::Stub> matching_;
  std::unique_ptr<sessions::v1::SessionsService::Stub> sessions_;
  std::unique_ptr<payments::v1::PaymentsService::Stub> payments_;
};

}  // namespace helpline::client
