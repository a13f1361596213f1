#include "tools/client/client.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/auth/jwt.h"

namespace helpline::client {
namespace {

// Access tokens live 15 minutes of service time (identity's maximum).
constexpr absl::Duration kAccessTokenLife = absl::Minutes(15);

// A target naming several replicas ("ipv4:host:port,host:port") spreads the
// calls over those that answer.
std::shared_ptr<grpc::Channel> ChannelTo(const std::string& target) {
  grpc::ChannelArguments arguments;
  if (target.find(',') != std::string::npos) arguments.SetLoadBalancingPolicyName("round_robin");
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
}

}  // namespace

bool HasRole(const std::string& access_token, const std::string& role) {
  absl::StatusOr<auth::ParsedToken> token = auth::ParseToken(access_token);
  if (!token.ok() || !token->claims.contains("roles")) return false;
  for (const auto& granted : token->claims["roles"]) {
    if (granted == role) return true;
  }
  return false;
}

Targets Targets::Local(int base) {
  auto at = [&](int offset) { return absl::StrCat("127.0.0.1:", base + offset); };
  return {at(1), at(2), at(3), at(4), at(5)};
}

Client::Client(const Targets& targets)
    : refresh_after_(kAccessTokenLife / 2),
      identity_(identity::v1::IdentityService::NewStub(ChannelTo(targets.identity))),
      catalog_(catalog::v1::CatalogService::NewStub(ChannelTo(targets.catalog))),
      matching_(matching::v1::MatchingService::NewStub(ChannelTo(targets.matching))),
      sessions_(sessions::v1::SessionsService::NewStub(ChannelTo(targets.sessions))),
      payments_(payments::v1::PaymentsService::NewStub(ChannelTo(targets.payments))) {}

absl::StatusOr<User> Client::SignIn(const std::string& email, const std::string& password) {
  identity::v1::LoginRequest request;
  request.set_email(email);
  request.set_password(password);
  identity::v1::LoginResponse response;
  if (absl::Status s = Call(*identity_, &identity::v1::IdentityService::Stub::Login, "", request,
                            &response);
      !s.ok()) {
    return s;
  }
  return User{email, password, response.user_id(), response.tokens().access_token(),
              response.tokens().refresh_token(), absl::Now()};
}

absl::StatusOr<std::string> Client::Token(User& user) {
  if (absl::Now() - user.signed_in < refresh_after_) return user.access_token;
  identity::v1::RefreshRequest request;
  request.set_refresh_token(user.refresh_token);
  identity::v1::RefreshResponse response;
  absl::Status refreshed =
      Call(*identity_, &identity::v1::IdentityService::Stub::Refresh, "", request, &response);
  if (refreshed.ok()) {
    user.access_token = response.tokens().access_token();
    user.refresh_token = response.tokens().refresh_token();
    user.signed_in = absl::Now();
    return user.access_token;
  }
  // A refresh token that was rotated away or expired: sign in again.
  absl::StatusOr<User> again = SignIn(user.email, user.password);
  if (!again.ok()) return again.status();
  user = *std::move(again);
  return user.access_token;
}

absl::StatusOr<User> Client::WaitForRole(User user, const std::string& role,
                                         absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  while (!HasRole(user.access_token, role)) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(user.email, " never got the role ", role));
    }
    absl::SleepFor(absl::Milliseconds(300));
    absl::StatusOr<User> again = SignIn(user.email, user.password);
    if (!again.ok()) return again.status();
    user = *std::move(again);
  }
  return user;
}

}  // namespace helpline::client
