#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/identity/hash_gate.h"

namespace helpline::identity {

// argon2id through libsodium's crypto_pwhash. Production uses at least the
// OWASP minimum (19 MiB, 2 passes); lighter settings are for tests only and
// must be asked for explicitly (identity.argon2_allow_weak). At most
// `concurrency` hashes run at once; a caller waits `queue_wait` for its turn,
// then gets RESOURCE_EXHAUSTED.
class PasswordHasher {
 public:
  struct Limits {
    int concurrency = 2;
    absl::Duration queue_wait = absl::Seconds(2);
  };
  static absl::StatusOr<PasswordHasher> Create(uint64_t passes, uint64_t memory_bytes,
                                               bool allow_weak, Limits limits);

  // The self-describing "$argon2id$v=19$m=...,t=...,p=1$..." string.
  absl::StatusOr<std::string> Hash(std::string_view password) const;
  // Whether the password matches.
  absl::StatusOr<bool> Verify(std::string_view hash, std::string_view password) const;
  // Spends the time of a verification for an account that does not exist,
  // so a wrong email takes as long as a wrong password.
  absl::Status VerifyNothing(std::string_view password) const;

 private:
  PasswordHasher(uint64_t passes, uint64_t memory_bytes, Limits limits);
  uint64_t passes_;
  uint64_t memory_bytes_;
  Limits limits_;
  std::shared_ptr<HashGate> gate_;
  std::string decoy_hash_;
};

}  // namespace helpline::identity
