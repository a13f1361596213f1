#include "services/runtime/auth/identity_jwks.h"

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "services/runtime/server/tls.h"

namespace helpline::auth {

void AddIdentityTargetKey(server::ConfigSchema& schema) {
  schema.String("auth.identity_target", "127.0.0.1:7001",
                "identity's gRPC address (host:port): its GetJwks has the token keys");
  server::AddClientTlsKeys(schema, "auth.identity", "identity");
}

IdentityJwks::IdentityJwks(const std::string& target)
    : IdentityJwks(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())) {}

IdentityJwks::IdentityJwks(std::shared_ptr<grpc::Channel> channel)
    : stub_(identity::v1::IdentityService::NewStub(std::move(channel))) {}

std::vector<Ed25519Key> IdentityJwks::FromResponse(const identity::v1::GetJwksResponse& response) {
  std::vector<Ed25519Key> keys;
  for (const identity::v1::JsonWebKey& jwk : response.keys()) {
    if (jwk.kty() != "OKP" || jwk.crv() != "Ed25519" || jwk.kid().empty()) continue;
    absl::StatusOr<std::string> x = Base64UrlDecode(jwk.x());
    if (!x.ok() || x->size() != 32) continue;
    Ed25519Key key;
    key.kid = jwk.kid();
    std::memcpy(key.public_key.data(), x->data(), 32);
    keys.push_back(std::move(key));
  }
  return keys;
}

absl::StatusOr<std::vector<Ed25519Key>> IdentityJwks::FetchKeys() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  identity::v1::GetJwksResponse response;
  grpc::Status status = stub_->GetJwks(&context, identity::v1::GetJwksRequest(), &response);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("GetJwks: ", status.error_message()));
  }
  return FromResponse(response);
}

IdentityCallGuard::IdentityCallGuard(const server::Config& config, const Clock& clock,
                                     double per_second, const server::GrpcServer& server)
    : jwks_(server::ChannelFromConfigOrExit(config, "auth.identity")),
      verifier_(VerifierOptionsFromConfig(config), jwks_, clock),
      per_caller_(per_second, per_second * 5, clock),
      guard_(&verifier_, per_caller_, [&server] { return server.serving(); },
             TrustedProxiesFromConfig(config)) {}

}  // namespace helpline::auth
