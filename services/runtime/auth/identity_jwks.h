#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/auth/rate_limiter.h"
#include "services/runtime/auth/token_verifier.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/server/server.h"

namespace helpline::auth {

// "auth.identity_target": where services other than identity fetch the keys.
void AddIdentityTargetKey(server::ConfigSchema& schema);

// The public keys as identity publishes them (GetJwks): what every other
// service's TokenVerifier uses.
class IdentityJwks : public PublicKeySource {
 public:
  // `target` is identity's gRPC address ("identity:7001").
  // Plaintext (tests and tools).
  explicit IdentityJwks(const std::string& target);
  explicit IdentityJwks(std::shared_ptr<grpc::Channel> channel);
  absl::StatusOr<std::vector<Ed25519Key>> FetchKeys() override;

  // The keys of a GetJwks answer; Ed25519 keys only, others are skipped.
  static std::vector<Ed25519Key> FromResponse(const identity::v1::GetJwksResponse& response);

 private:
  std::unique_ptr<identity::v1::IdentityService::Stub> stub_;
};

// The CallGuard of a service other than identity: tokens verified with the
// keys identity publishes ("auth.identity_target"), and `per_second` calls
// per caller (burst: 5 times that).
class IdentityCallGuard {
 public:
  // Calls are UNAVAILABLE while `server` is not serving. `clock` is the
  // wall clock: tokens carry real time and limits count real seconds.
  IdentityCallGuard(const server::Config& config, const Clock& clock, double per_second,
                    const server::GrpcServer& server);
  CallGuard& guard() { return guard_; }

 private:
  IdentityJwks jwks_;
  TokenVerifier verifier_;
  RateLimiter per_caller_;
  CallGuard guard_;
};

}  // namespace helpline::auth
