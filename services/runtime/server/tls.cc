#include "services/runtime/server/tls.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
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
  // Read once here for an error that names the key; the provider reads them
  // again every reload_seconds.
  if (absl::StatusOr<std::string> cert = ReadPem(files.cert_file, "grpc.tls.cert_file"); !cert.ok()) {
    return cert.status();
  }
  if (absl::StatusOr<std::string> key = ReadPem(files.key_file, "grpc.tls.key_file"); !key.ok()) {
    return key.status();
  }
  if (!files.ca_file.empty()) {
    if (absl::StatusOr<std::string> ca = ReadPem(files.ca_file, "grpc.tls.client_ca_file"); !ca.ok()) {
      return ca.status();
    }
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.ca_file, files.reload_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (files.ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
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
  if (absl::StatusOr<std::string> ca = ReadPem(files.ca_file, what + ".tls.ca_file"); !ca.ok()) {
    return ca.status();
  }
  if (!files.cert_file.empty()) {
    if (absl::StatusOr<std::string> cert = ReadPem(files.cert_file, what + ".tls.cert_file");
        !cert.ok()) {
      return cert.status();
    }
    if (absl::StatusOr<std::string> key = ReadPem(files.key_file, what + ".tls.key_file");
        !key.ok()) {
      return key.status();
    }
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.ca_file, files.reload_seconds);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (!files.cert_file.empty()) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  grpc::ChannelArguments arguments;
  if (!files.server_name.empty()) arguments.SetSslTargetNameOverride(files.server_name);
  return grpc::CreateCustomChannel(target, grpc::experimental::TlsCredentials(options), arguments);
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
