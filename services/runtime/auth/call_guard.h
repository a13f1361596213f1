#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "services/runtime/auth/rate_limiter.h"
#include "services/runtime/auth/token_verifier.h"
#include "services/runtime/auth/trusted_proxies.h"

namespace helpline::auth {

// The one wrapper every gRPC handler goes through (gRPC 1.51's server
// interceptors cannot reject a call): reads the bearer token and verifies it
// (UNAUTHENTICATED otherwise), applies the per-caller rate limit
// (RESOURCE_EXHAUSTED with RetryInfo), carries the trace id into the logs,
// and turns the handler's absl::Status into a gRPC status with details.
// While `serving` says no (starting, catching up with the log, Kafka away)
// every call is UNAVAILABLE: answers from a read model not caught up would
// be wrong ("not an active category" right after a restart).
class CallGuard {
 public:
  // `verifier` may be null for a server whose RPCs are all public;
  // `serving` null for one that always answers.
  // Public calls are limited per client address: the peer, or the one a
  // trusted proxy forwarded (`proxies`).
  CallGuard(TokenVerifier* verifier, RateLimiter& per_caller,
            std::function<bool()> serving = nullptr, TrustedProxies proxies = {});

  // Calls of the accounts `closed` names (deleted ones, whose tokens have
  // not expired yet) are UNAUTHENTICATED. Set before the server serves.
  void RefuseClosedAccounts(std::function<bool(const std::string& user_id)> closed) {
    closed_ = std::move(closed);
  }

  grpc::Status Authenticated(grpc::ServerContextBase* context,
                             const std::function<absl::Status(const Principal&)>& handler);
  // Register, Login, Refresh, GetJwks: limited per peer address.
  grpc::Status Public(grpc::ServerContextBase* context, const std::function<absl::Status()>& handler);

  // The caller's address without the port ("ipv4:10.0.0.7"), or the client
  // a trusted proxy forwarded the call for.
  std::string ClientOf(const grpc::ServerContextBase& context) const;

 private:
  absl::Status NotServing() const;

  TokenVerifier* verifier_;
  RateLimiter& per_caller_;
  const std::function<bool()> serving_;
  const TrustedProxies proxies_;
  std::function<bool(const std::string& user_id)> closed_;
};

// PERMISSION_DENIED unless the caller has the role.
absl::Status RequireRole(const Principal& caller, std::string_view role);

}  // namespace helpline::auth
