#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/auth/trusted_proxies.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/server/config.h"

namespace helpline::auth {

// Who is calling, as their access token says.
struct Principal {
  std::string user_id;
  std::vector<std::string> roles;
  std::string token_id;
  absl::Time expires_at;

  bool HasRole(std::string_view role) const;
};

// Where a verifier gets the public keys (identity's GetJwks, or identity's
// own key set).
class PublicKeySource {
 public:
  virtual ~PublicKeySource() = default;
  virtual absl::StatusOr<std::vector<Ed25519Key>> FetchKeys() = 0;
};

struct VerifierOptions {
  std::string issuer = "helpline-identity";
  std::string audience = "helpline";
  absl::Duration leeway = absl::Seconds(30);
  // Tokens that claim to live longer than this are refused outright.
  absl::Duration max_lifetime = absl::Minutes(15);
  // At most one key refresh this often, however many unknown kids arrive.
  absl::Duration min_refresh_interval = absl::Seconds(30);
  // After a refresh that failed (identity restarting), the next may come this
  // soon.
  absl::Duration retry_interval = absl::Seconds(1);
  // Keys are fetched again when older than this, so a key dropped from the
  // set stops verifying.
  absl::Duration max_key_age = absl::Minutes(5);
};

void AddAuthKeys(server::ConfigSchema& schema);
VerifierOptions VerifierOptionsFromConfig(const server::Config& config);
// auth.trusted_proxies; a value that is no list of CIDRs ends the process.
TrustedProxies TrustedProxiesFromConfig(const server::Config& config);

// Checks an access token the way every Helpline service must: the algorithm
// is EdDSA and nothing else, the kid is a published key (an unknown kid
// refreshes the keys, rate-limited), the signature, issuer, audience, expiry
// and not-before (with a small leeway), and the lifetime. Thread-safe.
class TokenVerifier {
 public:
  TokenVerifier(VerifierOptions options, PublicKeySource& keys, const Clock& clock);

  // The caller, or UNAUTHENTICATED saying what is wrong with the token
  // (UNAVAILABLE for a key it cannot fetch while identity is unreachable). A
  // token verified before is not verified again (a signature check costs
  // more than the rest of a typical call) until it expires or the keys it
  // was checked against are older than max_key_age.
  absl::StatusOr<Principal> Verify(std::string_view token);

 private:
  struct Verified {
    Principal principal;
    std::string kid;
    absl::Time keys_fetched_at;  // real time, as the key refreshes
  };
  absl::StatusOr<Principal> VerifyFully(std::string_view token, std::string* kid);
  std::optional<Ed25519Key> FindKey(const std::string& kid);
  // The last fetch of the keys failed.
  bool KeysUnreachable();
  std::optional<Ed25519Key> PublishedKey(const std::string& kid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const VerifierOptions options_;
  PublicKeySource& source_;
  const Clock& clock_;
  absl::Mutex mutex_;
  std::vector<Ed25519Key> keys_ ABSL_GUARDED_BY(mutex_);
  // When keys_ was last fetched; a failed fetch changes only last_attempt_.
  absl::Time last_refresh_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  absl::Time last_attempt_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  bool last_attempt_failed_ ABSL_GUARDED_BY(mutex_) = false;
  // One fetch at a time, outside the lock: verification with known keys goes on meanwhile.
  bool refreshing_ ABSL_GUARDED_BY(mutex_) = false;
  // Taken after mutex_ when both are held.
  absl::Mutex verified_mutex_ ABSL_ACQUIRED_AFTER(mutex_);
  absl::flat_hash_map<std::string, Verified> verified_ ABSL_GUARDED_BY(verified_mutex_);
};

}  // namespace helpline::auth
