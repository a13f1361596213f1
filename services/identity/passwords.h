#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace helpline::identity {

// argon2id through libsodium's crypto_pwhash. Production uses at least the
// OWASP minimum (19 MiB, 2 passes); lighter settings are for tests only and
// must be asked for explicitly (identity.argon2_allow_weak).
class PasswordHasher {
 public:
  static absl::StatusOr<PasswordHasher> Create(uint64_t passes, uint64_t memory_bytes,
                                               bool allow_weak);

  // The self-describing "$argon2id$v=19$m=...,t=...,p=1$..." string.
  absl::StatusOr<std::string> Hash(std::string_view password) const;
  bool Verify(std::string_view hash, std::string_view password) const;
  // Spends the time of a verification for an account that does not exist,
  // so a wrong email takes as long as a wrong password.
  void VerifyNothing(std::string_view password) const;

 private:
  PasswordHasher(uint64_t passes, uint64_t memory_bytes);
  uint64_t passes_;
  uint64_t memory_bytes_;
  std::string decoy_hash_;
};

}  // namespace helpline::identity
