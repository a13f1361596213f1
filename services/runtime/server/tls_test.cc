// gRPC over TLS and mutual TLS with certificates made for the test by
// openssl: who is served, who is not, and the plaintext health port.
#include "services/runtime/server/tls.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/testing/v1/echo.grpc.pb.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/server/server.h"
#include "tests/support/grpc_probe.h"

namespace helpline::server {
namespace {

using ::helpline::testing::v1::EchoRequest;
using ::helpline::testing::v1::EchoResponse;
using ::helpline::testing::v1::EchoService;

class Echoes : public EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const EchoRequest* request,
                    EchoResponse* response) override {
    response->set_message(request->message());
    return grpc::Status::OK;
  }
};

// GetJwks answers one key, as identity's does.
class Jwks : public identity::v1::IdentityService::Service {
 public:
  grpc::Status GetJwks(grpc::ServerContext*, const identity::v1::GetJwksRequest*,
                       identity::v1::GetJwksResponse* response) override {
    identity::v1::JsonWebKey& key = *response->add_keys();
    key.set_kty("OKP");
    key.set_crv("Ed25519");
    key.set_kid("k1");
    key.set_x("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    return grpc::Status::OK;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        (std::filesystem::temp_directory_path() / ("tls-test-" + ids::NewUuidV7())).string());
    std::filesystem::create_directories(*dir_);
    // Two CAs; a server certificate for localhost and 127.0.0.1 and a
    // client certificate from the first, a client certificate from the other.
    std::string script = absl::StrCat(
        "set -e; cd '", *dir_, "'\n",
        "ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-keyout $1.key -out $1.pem -subj /CN=$1 2>/dev/null; }\n",
        "leaf() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $2.key "
        "-out $2.csr -subj /CN=$2 2>/dev/null; printf '%s\\n' \"$3\" > $2.ext; "
        "openssl x509 -req -in $2.csr -CA $1.pem -CAkey $1.key -CAcreateserial -days 2 "
        "-extfile $2.ext -out $2.pem 2>/dev/null; }\n",
        "ca ca; ca other-ca\n",
        "leaf ca server 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n",
        "leaf ca client 'extendedKeyUsage=clientAuth'\n",
        "leaf other-ca stranger 'extendedKeyUsage=clientAuth'\n",
        "leaf other-ca renewed 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n");
    ASSERT_EQ(std::system(absl::StrCat("bash -c \"$(cat <<'EOF'\n", script, "\nEOF\n)\"").c_str()),
              0)
        << "openssl made the certificates";
  }

  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::string File(const std::string& name) { return *dir_ + "/" + name; }

  static ServerOptions Options(bool mutual) {
    ServerOptions options;
    options.service_name = "tls-test";
    options.grpc_listen = "127.0.0.1:0";
    options.metrics_listen = "127.0.0.1:0";
    options.tls = {File("server.pem"), File("server.key"), mutual ? File("ca.pem") : "", ""};
    return options;
  }

  // A TLS channel trusting `ca`, presenting `client` (if not empty), asking
  // the server's certificate for `server_name` (if not empty).
  static std::shared_ptr<grpc::Channel> Channel(int port, const std::string& ca,
                                                const std::string& client = "",
                                                const std::string& server_name = "") {
    TlsFiles files{client.empty() ? "" : File(client + ".pem"),
                   client.empty() ? "" : File(client + ".key"), File(ca + ".pem"), server_name};
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ChannelTo(absl::StrCat("localhost:", port), files, true, "test");
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  static grpc::StatusCode CallEcho(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = EchoService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    EchoRequest request;
    request.set_message("over tls");
    EchoResponse response;
    grpc::Status status = stub->Echo(&context, request, &response);
    if (status.ok()) {
      EXPECT_EQ(response.message(), "over tls");
    }
    return status.error_code();
  }

  static std::string* dir_;
};

std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, ClientsThatTrustItsCaAreServedOthersAndPlaintextAreNot) {
  Echoes echo;
  GrpcServer server(Options(/*mutual=*/false));
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca")), grpc::StatusCode::OK);
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "other-ca")), grpc::StatusCode::UNAVAILABLE)
      << "a server certificate the client's CA did not sign is not trusted";
  EXPECT_EQ(CallEcho(::helpline::testing::LocalChannel(server.grpc_port())),
            grpc::StatusCode::UNAVAILABLE)
      << "no plaintext on a TLS port";
}

TEST_F(TlsTest, AServerCertificateForAnotherNameIsNotTrusted) {
  Echoes echo;
  GrpcServer server(Options(/*mutual=*/false));
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca", "", "localhost")), grpc::StatusCode::OK);
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca", "", "identity.helpline.svc")),
            grpc::StatusCode::UNAVAILABLE)
      << "a certificate of the right CA for another name: it could be any pod of the CA";
}

TEST_F(TlsTest, ACertificateRenewedOnDiskIsServedWithoutARestart) {
  // The server's own copies of its files, as a Secret's volume holds them.
  std::filesystem::copy_file(File("server.pem"), File("live.pem"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(File("server.key"), File("live.key"),
                             std::filesystem::copy_options::overwrite_existing);
  Echoes echo;
  ServerOptions options = Options(/*mutual=*/false);
  options.tls.cert_file = File("live.pem");
  options.tls.key_file = File("live.key");
  options.tls.reload_seconds = 1;
  GrpcServer server(options);
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca")), grpc::StatusCode::OK);

  // A new certificate (here from another CA, to tell them apart) replaces it.
  std::filesystem::copy_file(File("renewed.pem"), File("live.pem"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(File("renewed.key"), File("live.key"),
                             std::filesystem::copy_options::overwrite_existing);
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  grpc::StatusCode renewed = grpc::StatusCode::UNKNOWN;
  while (absl::Now() < deadline) {
    renewed = CallEcho(Channel(server.grpc_port(), "other-ca"));
    if (renewed == grpc::StatusCode::OK) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_EQ(renewed, grpc::StatusCode::OK) << "new connections get the renewed certificate";
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca")), grpc::StatusCode::UNAVAILABLE)
      << "and no longer the old one";
}

TEST_F(TlsTest, MutualTlsServesOnlyClientsWithACertificateItsCaSigned) {
  Echoes echo;
  GrpcServer server(Options(/*mutual=*/true));
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca", "client")), grpc::StatusCode::OK);
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca")), grpc::StatusCode::UNAVAILABLE)
      << "no client certificate";
  EXPECT_EQ(CallEcho(Channel(server.grpc_port(), "ca", "stranger")), grpc::StatusCode::UNAVAILABLE)
      << "a client certificate of another CA";
}

TEST_F(TlsTest, TheTokenKeysAreFetchedOverMutualTls) {
  Jwks jwks;
  GrpcServer identity(Options(/*mutual=*/true));
  identity.AddService(&jwks);
  ASSERT_TRUE(identity.Start().ok());
  auth::IdentityJwks over_tls(Channel(identity.grpc_port(), "ca", "client"));
  absl::StatusOr<std::vector<auth::Ed25519Key>> keys = over_tls.FetchKeys();
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].kid, "k1");
  auth::IdentityJwks plaintext(absl::StrCat("127.0.0.1:", identity.grpc_port()));
  EXPECT_FALSE(plaintext.FetchKeys().ok());
}

TEST_F(TlsTest, KubeletsPlaintextHealthPortAnswersHealthAndNothingElse) {
  Echoes echo;
  ServerOptions options = Options(/*mutual=*/true);
  options.health_listen = "127.0.0.1:0";
  GrpcServer server(options);
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  ASSERT_NE(server.health_port(), 0);
  EXPECT_EQ(::helpline::testing::HealthStatus(server.health_port()).value_or("error"), "NOT_SERVING");
  EXPECT_EQ(::helpline::testing::HealthStatus(server.health_port(), kLivenessService).value_or("error"),
            "SERVING");
  server.SetServing(true);
  EXPECT_EQ(::helpline::testing::HealthStatus(server.health_port()).value_or("error"), "SERVING");
  EXPECT_EQ(CallEcho(::helpline::testing::LocalChannel(server.health_port())),
            grpc::StatusCode::UNIMPLEMENTED)
      << "only health on the plaintext port";
  server.Shutdown();
}

TEST_F(TlsTest, PlaintextIsRefusedWhereTlsIsRequiredAndBadFilesAreNamed) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server = ServerCredentialsFor({}, true);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(server.status().message().find("grpc.tls.cert_file"), std::string::npos)
      << server.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ChannelTo("identity:7001", {}, true, "auth.identity");
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(channel.status().message().find("auth.identity.tls.ca_file"), std::string::npos)
      << channel.status();
  EXPECT_TRUE(ChannelTo("identity:7001", {}, false, "auth.identity").ok()) << "plaintext allowed";

  absl::StatusOr<std::shared_ptr<grpc::Channel>> missing =
      ChannelTo("identity:7001", {"", "", File("no-such.pem"), ""}, true, "auth.identity");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("auth.identity.tls.ca_file"), std::string::npos);
  ServerOptions unreadable = Options(false);
  unreadable.tls.key_file = File("no-such.key");
  GrpcServer refused(unreadable);
  absl::Status started = refused.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(started.message().find("grpc.tls.key_file"), std::string::npos) << started;
}

}  // namespace
}  // namespace helpline::server
