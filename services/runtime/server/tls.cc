#include "services/runtime/server/tls.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "services/runtime/server/log.h"

namespace helpline::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot read a PEM file at \"", path, "\""));
  }
  return text.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const TlsFiles& files, bool required) {
  if (files.cert_file.empty()) {
    if (required) {
      return absl::FailedPreconditionError(
          "grpc.tls.cert_file: tls.required is set, so the server cannot listen in plaintext");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPem(files.cert_file, "grpc.tls.cert_file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(files.key_file, "grpc.tls.key_file");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!files.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(files.ca_file, "grpc.tls.client_ca_file");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelTo(const std::string& target,
                                                         const TlsFiles& files, bool required,
                                                         const std::string& what) {
  if (files.ca_file.empty()) {
    if (required) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, ".tls.ca_file: tls.required is set, so ", target, " is not called in plaintext"));
    }
    return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  }
  grpc::SslCredentialsOptions options;
  absl::StatusOr<std::string> ca = ReadPem(files.ca_file, what + ".tls.ca_file");
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca;
  if (!files.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(files.cert_file, what + ".tls.cert_file");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(files.key_file, what + ".tls.key_file");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  grpc::ChannelArguments arguments;
  if (!files.server_name.empty()) arguments.SetSslTargetNameOverride(files.server_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), arguments);
}

void AddClientTlsKeys(ConfigSchema& schema, const std::string& prefix, const std::string& what) {
  schema
      .String(prefix + ".tls.ca_file", "",
              absl::StrCat("PEM CA that ", what, "'s certificate must chain to; set: TLS to ", what,
                           ", empty: plaintext"))
      .String(prefix + ".tls.cert_file", "",
              absl::StrCat("PEM certificate presented to ", what, " (mutual TLS); optional"))
      .String(prefix + ".tls.key_file", "", "its private key")
      .String(prefix + ".tls.server_name", "",
              absl::StrCat("the name ", what, "'s certificate must carry, if not the target's host"));
}

TlsFiles ClientTlsFromConfig(const Config& config, const std::string& prefix) {
  return TlsFiles{config.GetString(prefix + ".tls.cert_file"),
                  config.GetString(prefix + ".tls.key_file"),
                  config.GetString(prefix + ".tls.ca_file"),
                  config.GetString(prefix + ".tls.server_name")};
}

std::shared_ptr<grpc::Channel> ChannelFromConfigOrExit(const Config& config,
                                                       const std::string& prefix) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ChannelTo(config.GetString(prefix + "_target"), ClientTlsFromConfig(config, prefix),
                config.GetBool("tls.required"), prefix);
  if (!channel.ok()) {
    log::Error("bad config", {{"error", channel.status().ToString()}});
    std::exit(2);
  }
  return *std::move(channel);
}

}  // namespace helpline::server
