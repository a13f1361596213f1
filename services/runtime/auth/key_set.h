#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "services/runtime/auth/jwt.h"

namespace helpline::auth {

// The keys identity signs access tokens with, from a Secret file (never from
// Kafka):
//   {"keys": [{"kid": "2026-11", "seed": "<base64url of 32 bytes>",
//              "status": "next" | "active" | "retired"}]}
// Exactly one key is active and signs. Next and retired keys are published
// with it (GetJwks) and verify: rotation adds a key as next (published before
// it signs), then makes it active and the old one retired, and drops the
// retired one once tokens it signed have expired.
class SigningKeySet {
 public:
  static absl::StatusOr<SigningKeySet> FromJson(std::string_view text);
  static absl::StatusOr<SigningKeySet> FromFile(const std::string& path);
  // A new key set: (kid, status) pairs with fresh random seeds.
  static std::string GenerateJson(const std::vector<std::pair<std::string, std::string>>& keys);

  const Ed25519Key& active() const { return keys_[active_]; }
  // Every published key, without its secret half.
  std::vector<Ed25519Key> PublicKeys() const;

 private:
  std::vector<Ed25519Key> keys_;
  size_t active_ = 0;
};

}  // namespace helpline::auth
