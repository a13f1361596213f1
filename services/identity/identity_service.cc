#include "services/identity/identity_service.h"

#include <sodium.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/identity/domain/validation.h"
#include "services/runtime/core/text_checks.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/server/log.h"

namespace helpline::identity {
namespace {

constexpr char kRefreshTokenPrefix[] = "rt1";
constexpr char kWrongCredentials[] = "the email or the password is wrong";
// The actors of identity's own writes: a registration (no user yet) and the
// admin role granted at start.
constexpr char kRegistration[] = "identity.registration";
constexpr char kAdminBootstrap[] = "identity.admin-bootstrap";

absl::Status WrongCredentials() { return absl::UnauthenticatedError(kWrongCredentials); }

struct RefreshToken {
  std::string user_id;
  std::string family_id;
  std::string secret;
};

std::string FormatRefreshToken(const std::string& user_id, const std::string& family_id,
                               const std::string& secret) {
  return absl::StrCat(kRefreshTokenPrefix, ".", user_id, ".", family_id, ".",
                      Base64UrlEncode(secret));
}

absl::StatusOr<RefreshToken> ParseRefreshToken(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  if (parts.size() != 4 || parts[0] != kRefreshTokenPrefix || !ids::IsUuid(parts[1]) ||
      !ids::IsUuid(parts[2])) {
    return absl::UnauthenticatedError("not a refresh token");
  }
  absl::StatusOr<std::string> secret = Base64UrlDecode(parts[3]);
  if (!secret.ok() || secret->size() != 32) return absl::UnauthenticatedError("not a refresh token");
  return RefreshToken{parts[1], parts[2], *std::move(secret)};
}

std::string DeviceBinding(const IdentityReadModel::UserView& user) {
  return DeviceTokens::AccountBinding(user.user_id, user.password_hash.SerializeAsString());
}

// The bootstrap's own registration; no client may use it.
constexpr absl::string_view kAdminBootstrapRequestId = "admin-bootstrap";

std::string RandomSecret() {
  std::string secret(32, '\0');
  randombytes_buf(secret.data(), secret.size());
  return secret;
}

}  // namespace

IdentityService::IdentityService(IdentityOptions options, IdentityParts parts)
    : options_(std::move(options)),
      parts_(parts),
      device_tokens_(options_.email_hash_key, options_.device_token_ttl, parts_.token_clock) {}

std::string IdentityService::EmailClaimFor(const std::string& normalised_email) const {
  return EmailClaimId(normalised_email, options_.email_hash_key);
}

absl::StatusOr<std::string> IdentityService::Open(const v1::SealedText& sealed) {
  std::optional<std::string> key = parts_.keys.Key(sealed.key_id());
  if (!key) {
    // A key written by a registration just now may not have reached this
    // front's key feed yet (the keys topic is not the events topic): catch
    // up before concluding it was erased.
    absl::Status current =
        parts_.keys_feed.WaitUntilCurrent(absl::Now() + options_.command_timeout);
    if (!current.ok()) return current;
    key = parts_.keys.Key(sealed.key_id());
  }
  if (!key) return absl::NotFoundError("the account's data key is gone");
  return privacy::PiiVault::Open(sealed, *key);
}

absl::Status IdentityService::CheckPassword(const IdentityReadModel::UserView& user,
                                            const std::string& password) {
  absl::StatusOr<std::string> hash = Open(user.password_hash);
  if (!hash.ok()) {
    if (absl::Status spent = parts_.passwords.VerifyNothing(password); !spent.ok()) return spent;
    return WrongCredentials();
  }
  absl::StatusOr<bool> matches = parts_.passwords.Verify(*hash, password);
  if (!matches.ok()) return matches.status();
  if (!*matches) return WrongCredentials();
  return absl::OkStatus();
}

absl::StatusOr<privacy::PiiVault::DataKey> IdentityService::DataKeyFor(const std::string& user_id) {
  // An earlier attempt of this registration may have stored a key already.
  absl::Time deadline = absl::Now() + options_.command_timeout;
  if (absl::Status current = parts_.keys_feed.WaitUntilCurrent(deadline); !current.ok()) {
    return current;
  }
  for (const std::string& key_id : parts_.keys.KeyIdsOf(user_id)) {
    if (std::optional<std::string> key = parts_.keys.Key(key_id)) {
      return privacy::PiiVault::DataKey{key_id, *key, {}};
    }
  }
  privacy::PiiVault::DataKey key = parts_.vault.NewDataKey(user_id, parts_.clock.Now());
  kafka::Delivery stored = parts_.keys_producer.ProduceAndWait(
      {options_.keys_topic, std::nullopt, key.key_id, key.record.SerializeAsString(), {}});
  if (!stored.status.ok()) return absl::UnavailableError(stored.status.message());
  return key;
}

absl::StatusOr<std::string> IdentityService::RegisterAccount(
    const std::string& email, const std::string& password, const std::string& display_name,
    v1::AccountType type, const std::string& request_id,
    const std::vector<std::string>& extra_roles) {
  std::string claim_id = EmailClaimFor(email);
  std::string user_id = ids::UuidV5(ids::kHelplineNamespace,
                                    absl::StrCat("user\n", claim_id, "\n", request_id));
  // Hashed first: a hash refused under load then leaves no claim behind.
  absl::StatusOr<std::string> hash = parts_.passwords.Hash(password);
  if (!hash.ok()) return hash.status();
  v1::IdentityCommand claim;
  claim.mutable_claim_email()->set_user_id(user_id);
  absl::StatusOr<runtime::v1::Reply> claimed =
      parts_.front.Execute(claim, es::CommandOrigin::ByHelpline(
                                      claim_id,
                                      ids::CommandId(absl::StrCat("register:", claim_id), request_id),
                                      kRegistration));
  if (!claimed.ok()) return claimed.status();
  if (parts_.read_model.FindUser(user_id)) return user_id;  // a retry of a finished registration

  absl::StatusOr<privacy::PiiVault::DataKey> key = DataKeyFor(user_id);
  if (!key.ok()) return key.status();

  v1::IdentityCommand create;
  v1::CreateUser& user = *create.mutable_create_user();
  *user.mutable_email() = privacy::PiiVault::Seal(key->key_id, key->key, email);
  *user.mutable_display_name() = privacy::PiiVault::Seal(key->key_id, key->key, display_name);
  *user.mutable_password_hash() = privacy::PiiVault::Seal(key->key_id, key->key, *hash);
  user.set_account_type(type);
  user.set_email_claim_id(claim_id);
  for (const std::string& role : extra_roles) user.add_extra_roles(role);
  absl::StatusOr<runtime::v1::Reply> created =
      parts_.front.Execute(create, es::CommandOrigin::ByHelpline(
                                       user_id,
                                       ids::CommandId(absl::StrCat("register:", user_id), request_id),
                                       kRegistration));
  if (!created.ok() && !(created.status().code() == absl::StatusCode::kAlreadyExists &&
                         parts_.read_model.FindUser(user_id))) {
    return created.status();
  }
  log::Info("account registered", {{"user_id", user_id}});
  return user_id;
}

absl::Status IdentityService::BootstrapAdmin(const std::string& normalised_email,
                                             const std::string& password) {
  // Another replica may have registered the address a moment ago.
  if (absl::Status current = parts_.front.WaitUntilCurrent(absl::Now() + options_.command_timeout);
      !current.ok()) {
    return current;
  }
  std::optional<IdentityReadModel::UserView> existing =
      parts_.read_model.FindByEmailClaim(EmailClaimFor(normalised_email));
  if (!existing) {
    absl::StatusOr<std::string> registered =
        RegisterAccount(normalised_email, password, "Administrator", v1::ACCOUNT_TYPE_PERSON,
                        std::string(kAdminBootstrapRequestId), {"admin"});
    if (!registered.ok()) return registered.status();
    // The same request id answers with an account registered before, admin or not.
    std::optional<IdentityReadModel::UserView> user = parts_.read_model.FindUser(*registered);
    if (user && std::count(user->roles.begin(), user->roles.end(), "admin") > 0) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError("admin.email was registered without the admin role");
  }
  if (std::count(existing->roles.begin(), existing->roles.end(), "admin") > 0) {
    return absl::OkStatus();  // its password may have changed since
  }
  if (absl::Status proven = CheckPassword(*existing, password); !proven.ok()) {
    if (proven.code() != absl::StatusCode::kUnauthenticated) return proven;
    return absl::FailedPreconditionError(
        "the account holding admin.email does not have admin.password: no admin granted");
  }
  return GrantRole(existing->user_id, "admin", std::string(kAdminBootstrapRequestId));
}

absl::Status IdentityService::GrantRole(const std::string& user_id, const std::string& role,
                                        const std::string& request_id) {
  v1::IdentityCommand grant;
  grant.mutable_grant_role()->set_role(role);
  return parts_.front.Write(
      grant, es::CommandOrigin::ByHelpline(
                 user_id, ids::CommandId(absl::StrCat("grant:", user_id), request_id), kAdminBootstrap));
}

v1::TokenPair IdentityService::Tokens(const IdentityReadModel::UserView& user,
                                      const std::string& family_id, const std::string& secret,
                                      absl::Time refresh_expires) {
  absl::Time now = parts_.token_clock.Now();
  auth::AccessClaims claims;
  claims.issuer = options_.issuer;
  claims.audience = options_.audience;
  claims.subject = user.user_id;
  claims.roles = user.roles;
  claims.token_id = ids::NewUuidV7();
  claims.issued_at = now;
  claims.expires_at = now + options_.access_token_ttl;
  v1::TokenPair tokens;
  tokens.set_access_token(auth::SignToken(claims, parts_.signing_keys.Active()));
  *tokens.mutable_access_token_expires_at() = ToProtoTime(claims.expires_at);
  tokens.set_refresh_token(FormatRefreshToken(user.user_id, family_id, secret));
  *tokens.mutable_refresh_token_expires_at() = ToProtoTime(refresh_expires);
  return tokens;
}

absl::StatusOr<v1::TokenPair> IdentityService::StartSession(
    const IdentityReadModel::UserView& user) {
  std::string family_id = ids::NewUuidV7();
  std::string secret = RandomSecret();
  absl::Time expires = parts_.clock.Now() + options_.refresh_token_ttl;
  v1::IdentityCommand issue;
  issue.mutable_issue_refresh_token()->set_family_id(family_id);
  issue.mutable_issue_refresh_token()->set_token_hash(HashTokenSecret(secret));
  *issue.mutable_issue_refresh_token()->mutable_expires_at() = ToProtoTime(expires);
  absl::StatusOr<runtime::v1::Reply> issued =
      parts_.front.Execute(issue, es::CommandOrigin::ByUser(user.user_id, ids::NewUuidV7(), user.user_id));
  if (!issued.ok()) return issued.status();
  return Tokens(user, family_id, secret, expires);
}

grpc::Status IdentityService::Register(grpc::ServerContext* context,
                                       const v1::RegisterRequest* request,
                                       v1::RegisterResponse* response) {
  return parts_.guard.Public(context, [&]() -> absl::Status {
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    validator.Check(!absl::StartsWith(request->request_id(), kAdminBootstrapRequestId),
                    "request_id", "is reserved");
    std::optional<std::string> email = NormaliseEmail(request->email());
    validator.Check(email.has_value(), "email", "must be an email address");
    identity::CheckPassword(request->password(), request->email(), "password", validator);
    CheckDisplayName(request->display_name(), "display_name", validator);
    validator.Check(request->account_type() != v1::ACCOUNT_TYPE_UNSPECIFIED &&
                        v1::AccountType_IsValid(request->account_type()),
                    "account_type",
                    "must be ACCOUNT_TYPE_PERSON or ACCOUNT_TYPE_ORGANISATION");
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    absl::StatusOr<std::string> user_id =
        RegisterAccount(*email, request->password(), request->display_name(),
                        request->account_type(), request->request_id(), {});
    if (!user_id.ok()) return user_id.status();
    response->set_user_id(*user_id);
    return absl::OkStatus();
  });
}

grpc::Status IdentityService::Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                                    v1::LoginResponse* response) {
  return parts_.guard.Public(context, [&]() -> absl::Status {
    std::optional<std::string> email = NormaliseEmail(request->email());
    errors::Validator validator;
    validator.Check(email.has_value(), "email", "must be an email address");
    validator.Check(!request->password().empty(), "password", "is required");
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    std::string claim_id = EmailClaimFor(*email);
    std::optional<IdentityReadModel::UserView> user;
    auto look_up = [&] {
      // Whatever replica registered the account: every login reads the log
      // up to now (the same for known and unknown addresses).
      parts_.front.WaitUntilCurrent(absl::Now() + absl::Seconds(2)).IgnoreError();
      user = parts_.read_model.FindByEmailClaim(claim_id);
    };
    // Per account, whatever address the attempts come from; a device that
    // signed in before (with the account's current password) has a bucket of
    // its own, out of a guesser's reach.
    std::optional<std::string> device;
    if (!request->device_token().empty()) {
      look_up();
      if (user) device = device_tokens_.Check(request->device_token(), DeviceBinding(*user));
    }
    const std::string bucket = device ? absl::StrCat(claim_id, "/device/", *device) : claim_id;
    if (absl::Status allowed = parts_.logins_per_account.Take(bucket); !allowed.ok()) {
      return allowed;
    }
    if (request->device_token().empty()) look_up();
    absl::Status checked = user ? CheckPassword(*user, request->password())
                                : parts_.passwords.VerifyNothing(request->password());
    if (checked.code() == absl::StatusCode::kResourceExhausted) {
      // Refused before any check: the attempt does not count against the account.
      parts_.logins_per_account.GiveBack(bucket);
      return checked;
    }
    if (!user) return checked.ok() ? WrongCredentials() : checked;
    if (!checked.ok()) return checked;
    absl::StatusOr<v1::TokenPair> tokens = StartSession(*user);
    if (!tokens.ok()) return tokens.status();
    response->set_user_id(user->user_id);
    *response->mutable_tokens() = *std::move(tokens);
    response->set_device_token(
        device_tokens_.Issue(DeviceBinding(*user), device.value_or(DeviceTokens::NewDeviceId())));
    return absl::OkStatus();
  });
}

grpc::Status IdentityService::Refresh(grpc::ServerContext* context,
                                      const v1::RefreshRequest* request,
                                      v1::RefreshResponse* response) {
  return parts_.guard.Public(context, [&]() -> absl::Status {
    absl::StatusOr<RefreshToken> token = ParseRefreshToken(request->refresh_token());
    if (!token.ok()) return token.status();
    std::string next = RandomSecret();
    absl::Time expires = parts_.clock.Now() + options_.refresh_token_ttl;
    std::string presented = HashTokenSecret(token->secret);
    v1::IdentityCommand rotate;
    v1::RotateRefreshToken& rotation = *rotate.mutable_rotate_refresh_token();
    rotation.set_family_id(token->family_id);
    rotation.set_presented_hash(presented);
    rotation.set_new_hash(HashTokenSecret(next));
    *rotation.mutable_expires_at() = ToProtoTime(expires);
    // A fresh command id each time: presenting a spent token again must reach
    // the aggregate (and end the session), even when it is a client's retry.
    absl::StatusOr<runtime::v1::Reply> rotated =
        parts_.front.Execute(rotate, es::CommandOrigin::ByUser(token->user_id, ids::NewUuidV7(),
                                                               token->user_id));
    if (!rotated.ok()) {
      return rotated.status().code() == absl::StatusCode::kNotFound
                 ? absl::UnauthenticatedError("the session has ended; sign in again")
                 : rotated.status();
    }
    std::optional<IdentityReadModel::UserView> user = parts_.read_model.FindUser(token->user_id);
    if (!user || !user->live_sessions.contains(token->family_id)) {
      return absl::UnauthenticatedError(
          "this refresh token was used before; the session has ended, sign in again");
    }
    *response->mutable_tokens() = Tokens(*user, token->family_id, next, expires);
    return absl::OkStatus();
  });
}

grpc::Status IdentityService::Logout(grpc::ServerContext* context,
                                     const v1::LogoutRequest* request,
                                     v1::LogoutResponse* response) {
  return parts_.guard.Public(context, [&]() -> absl::Status {
    absl::StatusOr<RefreshToken> token = ParseRefreshToken(request->refresh_token());
    if (!token.ok()) return token.status();
    v1::IdentityCommand revoke;
    revoke.mutable_revoke_refresh_family()->set_family_id(token->family_id);
    revoke.mutable_revoke_refresh_family()->set_presented_hash(HashTokenSecret(token->secret));
    absl::StatusOr<runtime::v1::Reply> revoked =
        parts_.front.Execute(revoke, es::CommandOrigin::ByUser(token->user_id, ids::NewUuidV7(),
                                                               token->user_id));
    if (!revoked.ok() && revoked.status().code() != absl::StatusCode::kNotFound) {
      return revoked.status();
    }
    return absl::OkStatus();
  });
}

grpc::Status IdentityService::GetMe(grpc::ServerContext* context, const v1::GetMeRequest*,
                                    v1::GetMeResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    std::optional<IdentityReadModel::UserView> user = parts_.front.ReadOrCatchUp(
        [&] { return parts_.read_model.FindUser(caller.user_id); });
    if (!user) return absl::NotFoundError("no such account");
    absl::StatusOr<std::string> email = Open(user->email);
    absl::StatusOr<std::string> name = Open(user->display_name);
    if (!email.ok() || !name.ok()) return absl::NotFoundError("no such account");
    v1::User& out = *response->mutable_user();
    out.set_user_id(user->user_id);
    out.set_email(*email);
    out.set_display_name(*name);
    out.set_account_type(user->account_type);
    for (const std::string& role : user->roles) out.add_roles(role);
    *out.mutable_created_at() = ToProtoTime(user->created_at);
    return absl::OkStatus();
  });
}

grpc::Status IdentityService::ChangePassword(grpc::ServerContext* context,
                                             const v1::ChangePasswordRequest* request,
                                             v1::ChangePasswordResponse*) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    std::optional<IdentityReadModel::UserView> user = parts_.front.ReadOrCatchUp(
        [&] { return parts_.read_model.FindUser(caller.user_id); });
    if (!user) return absl::NotFoundError("no such account");
    absl::StatusOr<std::string> email = Open(user->email);
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    validator.Check(!request->current_password().empty(), "current_password", "is required");
    identity::CheckPassword(request->new_password(), email.ok() ? *email : "", "new_password",
                            validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    if (absl::Status checked = CheckPassword(*user, request->current_password()); !checked.ok()) {
      if (checked.code() != absl::StatusCode::kUnauthenticated) return checked;  // try again later
      return absl::PermissionDeniedError("the current password is wrong");
    }
    std::optional<std::string> key = parts_.keys.Key(user->password_hash.key_id());
    if (!key) return absl::NotFoundError("no such account");
    absl::StatusOr<std::string> hash = parts_.passwords.Hash(request->new_password());
    if (!hash.ok()) return hash.status();
    v1::IdentityCommand change;
    *change.mutable_change_password()->mutable_password_hash() =
        privacy::PiiVault::Seal(user->password_hash.key_id(), *key, *hash);
    return parts_.front.Write(
        change, es::CommandOrigin::ByUser(
                    user->user_id,
                    ids::CommandId(user->user_id, absl::StrCat("password:", request->request_id())),
                    user->user_id));
  });
}

grpc::Status IdentityService::DeleteAccount(grpc::ServerContext* context,
                                            const v1::DeleteAccountRequest* request,
                                            v1::DeleteAccountResponse*) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    validator.Check(!request->password().empty(), "password", "is required");
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    std::optional<IdentityReadModel::UserView> user = parts_.front.ReadOrCatchUp(
        [&] { return parts_.read_model.FindUser(caller.user_id); });
    if (!user) return absl::NotFoundError("no such account");
    if (absl::Status checked = CheckPassword(*user, request->password()); !checked.ok()) {
      if (checked.code() != absl::StatusCode::kUnauthenticated) return checked;  // try again later
      return absl::PermissionDeniedError("the password is wrong");
    }
    v1::IdentityCommand remove;
    remove.mutable_delete_user();
    absl::StatusOr<runtime::v1::Reply> deleted = parts_.front.Execute(
        remove, es::CommandOrigin::ByUser(
                    user->user_id,
                    ids::CommandId(user->user_id, absl::StrCat("delete:", request->request_id())),
                    user->user_id));
    if (!deleted.ok()) return deleted.status();
    log::Info("account deleted; its data key will be erased", {{"user_id", user->user_id}});
    return absl::OkStatus();
  });
}

grpc::Status IdentityService::GetJwks(grpc::ServerContext* context, const v1::GetJwksRequest*,
                                      v1::GetJwksResponse* response) {
  return parts_.guard.Public(context, [&]() -> absl::Status {
    for (const auth::Ed25519Key& key : parts_.signing_keys.Published()) {
      v1::JsonWebKey& jwk = *response->add_keys();
      jwk.set_kty("OKP");
      jwk.set_crv("Ed25519");
      jwk.set_kid(key.kid);
      jwk.set_x(Base64UrlEncode(std::string_view(
          reinterpret_cast<const char*>(key.public_key.data()), key.public_key.size())));
      jwk.set_use("sig");
      jwk.set_alg("EdDSA");
    }
    return absl::OkStatus();
  });
}

}  // namespace helpline::identity
