#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "services/runtime/server/config.h"

namespace helpline::server {

// PEM files of one end of a gRPC connection.
struct TlsFiles {
  std::string cert_file;  // this end's certificate chain
  std::string key_file;   // and its private key
  // A server: clients must present a certificate this CA signed (mutual
  // TLS). A client: the CA the server's certificate must chain to.
  std::string ca_file;
  // A client: the name the server's certificate must carry, if not the
  // target's host (e.g. "identity.helpline.svc").
  std::string server_name;
  // The files are read again this often: a renewed certificate (a Secret
  // updated in place) is used for new connections without a restart.
  unsigned int reload_seconds = 60;
};

// TLS when `files.cert_file` is set (with `files.ca_file`, only clients with
// a certificate it signed are served); plaintext otherwise, unless
// `required`. Errors name the file that is missing or unreadable.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const TlsFiles& files, bool required);

// A channel to `target`: TLS when `files.ca_file` is set (presenting
// cert_file/key_file when set, for mutual TLS); plaintext otherwise, unless
// `required` (FAILED_PRECONDITION naming `what`).
absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelTo(const std::string& target,
                                                         const TlsFiles& files, bool required,
                                                         const std::string& what);

// `<prefix>.tls.{ca_file,cert_file,key_file,server_name}`: how this process
// reaches `what` (e.g. prefix "auth.identity", what "identity").
void AddClientTlsKeys(ConfigSchema& schema, const std::string& prefix, const std::string& what);
TlsFiles ClientTlsFromConfig(const Config& config, const std::string& prefix);

// A channel to the config's `<prefix>_target` as `<prefix>.tls.*` says, with
// `tls.required`; a config that asks for plaintext where TLS is required, or
// names a file that cannot be read, ends the process (status 2) with a log
// line naming the key.
std::shared_ptr<grpc::Channel> ChannelFromConfigOrExit(const Config& config,
                                                       const std::string& prefix);

}  // namespace helpline::server
