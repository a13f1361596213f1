#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/identity/v1/commands.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "services/identity/device_tokens.h"
#include "services/identity/digests.h"
#include "services/identity/domain/read_model.h"
#include "services/identity/passwords.h"
#include "services/identity/signing_keys.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/auth/rate_limiter.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/kafka/producer.h"
#include "services/runtime/privacy/key_cache.h"
#include "services/runtime/privacy/pii_vault.h"

namespace helpline::identity {

struct IdentityOptions {
  std::string issuer = "helpline-identity";
  std::string audience = "helpline";
  absl::Duration access_token_ttl = absl::Minutes(15);
  absl::Duration refresh_token_ttl = absl::Hours(24 * 30);
  absl::Duration device_token_ttl = absl::Hours(24 * 90);
  // How long a write waits for the processor and the read model.
  absl::Duration command_timeout = absl::Seconds(10);
  std::string keys_topic;     // helpline.identity.keys
  std::string email_hash_key;  // 32 bytes
};

// What the gRPC glue works with; all owned by main.
struct IdentityParts {
  es::Front& front;
  IdentityReadModel& read_model;
  es::EventFeed& keys_feed;
  privacy::KeyCache& keys;
  kafka::Producer& keys_producer;
  const privacy::PiiVault& vault;
  const PasswordHasher& passwords;
  SigningKeys& signing_keys;
  auth::CallGuard& guard;
  auth::RateLimiter& logins_per_account;
  const Clock& clock;
  // Access tokens carry real time (iat, exp), whatever clock.rate says.
  const Clock& token_clock;
};

// The IdentityService API: validation, the password and token work, and the
// commands it sends to identity's processor. Every handler goes through the
// CallGuard.
class IdentityService final : public v1::IdentityService::Service {
 public:
  IdentityService(IdentityOptions options, IdentityParts parts);

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                     v1::LoginResponse* response) override;
  grpc::Status Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                       v1::RefreshResponse* response) override;
  grpc::Status Logout(grpc::ServerContext* context, const v1::LogoutRequest* request,
                      v1::LogoutResponse* response) override;
  grpc::Status GetMe(grpc::ServerContext* context, const v1::GetMeRequest* request,
                     v1::GetMeResponse* response) override;
  grpc::Status ChangePassword(grpc::ServerContext* context,
                              const v1::ChangePasswordRequest* request,
                              v1::ChangePasswordResponse* response) override;
  grpc::Status DeleteAccount(grpc::ServerContext* context, const v1::DeleteAccountRequest* request,
                             v1::DeleteAccountResponse* response) override;
  grpc::Status GetJwks(grpc::ServerContext* context, const v1::GetJwksRequest* request,
                       v1::GetJwksResponse* response) override;

  // Registers an account (or finds the one this request_id registered
  // before); the bootstrap admin comes this way with extra_roles {"admin"}.
  absl::StatusOr<std::string> RegisterAccount(const std::string& email, const std::string& password,
                                              const std::string& display_name,
                                              v1::AccountType type, const std::string& request_id,
                                              const std::vector<std::string>& extra_roles);
  // Grants a role to an existing account (idempotent per request id).
  absl::Status GrantRole(const std::string& user_id, const std::string& role,
                         const std::string& request_id);
  std::string EmailClaimFor(const std::string& normalised_email) const;
  // Makes the account holding `email` admin, registering it with `password`
  // if there is none. An existing account must have that password: nobody
  // verifies that an address belongs to whoever registered it, so whoever
  // registers the admin's address after its account is gone (or after the
  // setting names another address) is refused with FAILED_PRECONDITION.
  absl::Status BootstrapAdmin(const std::string& normalised_email, const std::string& password);

 private:
  // The account's password hash opened and checked; UNAUTHENTICATED otherwise.
  absl::Status CheckPassword(const IdentityReadModel::UserView& user, const std::string& password);
  absl::StatusOr<std::string> Open(const v1::SealedText& sealed);
  // A new session's token pair.
  absl::StatusOr<v1::TokenPair> StartSession(const IdentityReadModel::UserView& user);
  v1::TokenPair Tokens(const IdentityReadModel::UserView& user, const std::string& family_id,
                       const std::string& secret, absl::Time refresh_expires);
  // The data key to seal a new account's PII with: one an earlier attempt of
  // the same registration stored, or a new one, stored before use.
  absl::StatusOr<privacy::PiiVault::DataKey> DataKeyFor(const std::string& user_id);

  const IdentityOptions options_;
  IdentityParts parts_;
  const DeviceTokens device_tokens_;
};

}  // namespace helpline::identity
