#include "services/runtime/auth/call_guard.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/server/log.h"

namespace helpline::auth {
namespace {

std::string Metadata(const grpc::ServerContextBase& context, const std::string& name) {
  auto found = context.client_metadata().find(name);
  if (found == context.client_metadata().end()) return "";
  return std::string(found->second.data(), found->second.size());
}

std::string TraceIdFor(const grpc::ServerContextBase& context) {
  std::string trace_id = es::TraceIdOf(Metadata(context, "traceparent"));
  return trace_id.empty() ? es::TraceIdOf(es::NewTraceparent()) : trace_id;
}

grpc::Status Run(const std::function<absl::Status()>& body) {
  try {
    return errors::ToGrpc(body());
  } catch (const std::exception& e) {
    log::Error("handler failed", {{"error", e.what()}});
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }
}

}  // namespace

CallGuard::CallGuard(TokenVerifier* verifier, RateLimiter& per_caller,
                     std::function<bool()> serving, TrustedProxies proxies)
    : verifier_(verifier),
      per_caller_(per_caller),
      serving_(std::move(serving)),
      proxies_(std::move(proxies)) {}

absl::Status CallGuard::NotServing() const {
  if (serving_ == nullptr || serving_()) return absl::OkStatus();
  return absl::UnavailableError(
      "not serving yet: the service is catching up with its event log or waiting for Kafka; "
      "try again in a moment");
}

std::string CallGuard::ClientOf(const grpc::ServerContextBase& context) const {
  return proxies_.ClientOf(context.peer(), Metadata(context, "x-forwarded-for"));
}

grpc::Status CallGuard::Authenticated(
    grpc::ServerContextBase* context, const std::function<absl::Status(const Principal&)>& handler) {
  log::ScopedTraceId trace(TraceIdFor(*context));
  return Run([&]() -> absl::Status {
    if (absl::Status serving = NotServing(); !serving.ok()) return serving;
    if (verifier_ == nullptr) return absl::InternalError("this server verifies no tokens");
    std::string authorization = Metadata(*context, "authorization");
    if (!absl::StartsWithIgnoreCase(authorization, "bearer ")) {
      return absl::UnauthenticatedError(
          "missing access token: send metadata 'authorization: Bearer <token>'");
    }
    absl::StatusOr<Principal> caller = verifier_->Verify(authorization.substr(7));
    if (!caller.ok()) return caller.status();
    if (closed_ && closed_(caller->user_id)) {
      return absl::UnauthenticatedError("this account was deleted");
    }
    if (absl::Status allowed = per_caller_.Take(caller->user_id); !allowed.ok()) return allowed;
    return handler(*caller);
  });
}

grpc::Status CallGuard::Public(grpc::ServerContextBase* context,
                               const std::function<absl::Status()>& handler) {
  log::ScopedTraceId trace(TraceIdFor(*context));
  return Run([&]() -> absl::Status {
    if (absl::Status serving = NotServing(); !serving.ok()) return serving;
    if (absl::Status allowed = per_caller_.Take(ClientOf(*context)); !allowed.ok()) return allowed;
    return handler();
  });
}

absl::Status RequireRole(const Principal& caller, std::string_view role) {
  if (caller.HasRole(role)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("this needs the role '", std::string(role), "'"));
}

}  // namespace helpline::auth
