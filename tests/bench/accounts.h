#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "services/runtime/core/ids.h"

// Accounts and calls for the benchmark drivers.
namespace helpline::bench {

inline std::shared_ptr<grpc::Channel> Channel(const std::string& target) {
  return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
}

inline constexpr char kBenchPassword[] = "benchmark-password-1";

inline absl::StatusOr<std::string> Login(identity::v1::IdentityService::Stub& identity,
                                         const std::string& email,
                                         const std::string& password = kBenchPassword) {
  identity::v1::LoginRequest request;
  request.set_email(email);
  request.set_password(password);
  identity::v1::LoginResponse response;
  grpc::ClientContext context;
  grpc::Status status = identity.Login(&context, request, &response);
  if (!status.ok()) return absl::UnauthenticatedError(status.error_message());
  return response.tokens().access_token();
}

struct BenchAccount {
  std::string user_id;
  std::string email;
  std::string token;
};

// A new person's account, signed in.
inline absl::StatusOr<BenchAccount> NewAccount(identity::v1::IdentityService::Stub& identity) {
  identity::v1::RegisterRequest registration;
  registration.set_request_id(ids::NewUuidV7());
  registration.set_email(absl::StrCat("bench-", ids::NewUuidV7(), "@helpline.test"));
  registration.set_password(kBenchPassword);
  registration.set_display_name("Bench");
  registration.set_account_type(identity::v1::ACCOUNT_TYPE_PERSON);
  identity::v1::RegisterResponse registered;
  grpc::ClientContext context;
  grpc::Status status = identity.Register(&context, registration, &registered);
  if (!status.ok()) return absl::UnknownError("register failed: " + status.error_message());
  absl::StatusOr<std::string> token = Login(identity, registration.email());
  if (!token.ok()) return token.status();
  return BenchAccount{registered.user_id(), registration.email(), *token};
}

// Runs `call` with the bearer token; any gRPC error as UNKNOWN with its message.
template <class Call>
absl::Status Authorized(const std::string& token, Call call) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token);
  grpc::Status status = call(&context);
  if (!status.ok()) return absl::UnknownError(status.error_message());
  return absl::OkStatus();
}

}  // namespace helpline::bench
