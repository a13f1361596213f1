// helpline-identity-bench: identity's figures and their floors, driven by
// tools/bench.
//
//   helpline-identity-bench pwhash --threads N [--seconds S]
//     libsodium's raw crypto_pwhash_str_verify rate with production argon2id
//     parameters (19 MiB, 2 passes) on N threads: {"verifies_per_sec"}.
//   helpline-identity-bench login --target H:P --threads N [--seconds S]
//     registers N accounts, then signs in with them as fast as N clients go:
//     {"logins_per_sec", "p50_ms", "p99_ms"}.
//   helpline-identity-bench verify [--seconds S]
//     access-token verification through TokenVerifier next to raw Ed25519
//     verification of the same bytes: {"verifier_per_sec", "raw_per_sec"}.
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/auth/token_verifier.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/core/ids.h"
#include "tests/bench/closed_loop.h"

namespace {

using namespace helpline;  // NOLINT: a benchmark driver

struct Flags {
  std::string mode;
  std::string target;
  int threads = 2;
  double seconds = 10;
};

int Fail(const std::string& message) {
  std::cerr << "helpline-identity-bench: " << message << "\n";
  return 1;
}

int PasswordHash(const Flags& flags) {
  if (sodium_init() < 0) return Fail("libsodium");
  char hash[crypto_pwhash_STRBYTES];
  const std::string password = "benchmark-password-1";
  if (crypto_pwhash_str_alg(hash, password.data(), password.size(), 2, 19u << 20,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Fail("hashing");
  }
  std::atomic<int64_t> done{0};
  absl::Time end = absl::Now() + absl::Seconds(flags.seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < flags.threads; ++t) {
    threads.emplace_back([&] {
      while (absl::Now() < end) {
        if (crypto_pwhash_str_verify(hash, password.data(), password.size()) == 0) ++done;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::cout << nlohmann::json{{"verifies_per_sec", done.load() / flags.seconds}}.dump() << std::endl;
  return 0;
}

int Login(const Flags& flags) {
  auto channel = grpc::CreateChannel(flags.target, grpc::InsecureChannelCredentials());
  auto stub = identity::v1::IdentityService::NewStub(channel);
  std::string run = ids::NewUuidV7().substr(0, 8);
  std::vector<std::string> emails;
  for (int t = 0; t < flags.threads; ++t) {
    identity::v1::RegisterRequest request;
    request.set_request_id(absl::StrCat("bench-", run, "-", t));
    request.set_email(absl::StrCat("bench-", run, "-", t, "@helpline.test"));
    request.set_password("benchmark-password-1");
    request.set_display_name("Bench");
    request.set_account_type(identity::v1::ACCOUNT_TYPE_PERSON);
    grpc::ClientContext context;
    identity::v1::RegisterResponse response;
    grpc::Status status = stub->Register(&context, request, &response);
    if (!status.ok()) return Fail("register: " + status.error_message());
    emails.push_back(request.email());
  }
  bench::LoadFigures figures =
      bench::ClosedLoop(flags.threads, absl::Seconds(flags.seconds), [&](int t) {
        thread_local auto own = identity::v1::IdentityService::NewStub(channel);
        identity::v1::LoginRequest request;
        request.set_email(emails[t]);
        request.set_password("benchmark-password-1");
        grpc::ClientContext context;
        identity::v1::LoginResponse response;
        return own->Login(&context, request, &response).ok();
      });
  std::cout << figures.ToJson("logins_per_sec").dump() << std::endl;
  return 0;
}

class OneKey : public auth::PublicKeySource {
 public:
  explicit OneKey(auth::Ed25519Key key) : key_(std::move(key)) {}
  absl::StatusOr<std::vector<auth::Ed25519Key>> FetchKeys() override { return std::vector{key_}; }

 private:
  auth::Ed25519Key key_;
};

// Verifications/s of distinct tokens, each verified once (what a service
// sees from many users), next to raw Ed25519 over the same tokens; then the
// rate for one token verified again and again (the verifier remembers it).
int Verify(const Flags& flags) {
  auth::Ed25519Key key = auth::Ed25519Key::Generate("bench");
  SystemClock clock;
  constexpr int kTokens = 60000;
  std::vector<std::string> tokens;
  std::vector<auth::ParsedToken> parsed;
  for (int i = 0; i < kTokens; ++i) {
    auth::AccessClaims claims{"helpline-identity", "helpline", ids::NewUuidV7(), {"person"},
                              ids::NewUuidV7(), absl::Now(), absl::Now() + absl::Minutes(15)};
    tokens.push_back(auth::SignToken(claims, key));
    parsed.push_back(*auth::ParseToken(tokens.back()));
  }
  OneKey source(key);
  auto rate = [&](const std::function<bool(int)>& verify) {
    absl::Time started = absl::Now();
    absl::Time end = started + absl::Seconds(flags.seconds / 3);
    int64_t done = 0, ok = 0;
    while (absl::Now() < end && done < kTokens) {
      for (int i = 0; i < 100 && done < kTokens; ++i) ok += verify(static_cast<int>(done++));
    }
    if (ok != done) Fail("a token did not verify");
    return done / absl::ToDoubleSeconds(absl::Now() - started);
  };
  auth::TokenVerifier verifier(auth::VerifierOptions{}, source, clock);
  double distinct = rate([&](int i) { return verifier.Verify(tokens[i]).ok(); });
  double raw = rate([&](int i) { return auth::VerifySignature(parsed[i], key); });
  double remembered = rate([&](int) { return verifier.Verify(tokens[0]).ok(); });
  std::cout << nlohmann::json{{"verifier_per_sec", distinct},
                              {"raw_per_sec", raw},
                              {"remembered_per_sec", remembered},
                              {"distinct_tokens", kTokens}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: pwhash|login|verify [flags]");
  Flags flags;
  flags.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--target") flags.target = value;
    else if (flag == "--threads") ok = absl::SimpleAtoi(value, &flags.threads);
    else if (flag == "--seconds") ok = absl::SimpleAtod(value, &flags.seconds);
    else return Fail("unknown flag " + flag);
    if (!ok) return Fail("bad value for " + flag);
  }
  if (flags.mode == "pwhash") return PasswordHash(flags);
  if (flags.mode == "login") return Login(flags);
  if (flags.mode == "verify") return Verify(flags);
  return Fail("unknown mode " + flags.mode);
}
