#include "services/identity/passwords.h"

#include <sodium.h>

#include "absl/strings/str_cat.h"

namespace helpline::identity {

constexpr uint64_t kOwaspMinimumBytes = 19u << 20;
constexpr uint64_t kOwaspMinimumPasses = 2;

absl::StatusOr<PasswordHasher> PasswordHasher::Create(uint64_t passes, uint64_t memory_bytes,
                                                      bool allow_weak, Limits limits) {
  if (sodium_init() < 0) return absl::InternalError("libsodium did not initialise");
  if (!allow_weak && (passes < kOwaspMinimumPasses || memory_bytes < kOwaspMinimumBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "argon2id needs at least ", kOwaspMinimumPasses, " passes and ", kOwaspMinimumBytes >> 20,
        " MiB (OWASP); lower only with identity.argon2_allow_weak for tests"));
  }
  if (passes < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      memory_bytes < crypto_pwhash_argon2id_MEMLIMIT_MIN) {
    return absl::InvalidArgumentError("argon2id parameters below libsodium's minimum");
  }
  if (limits.concurrency < 1) return absl::InvalidArgumentError("hash concurrency must be >= 1");
  PasswordHasher hasher(passes, memory_bytes, limits);
  absl::StatusOr<std::string> decoy = hasher.Hash("decoy password for unknown accounts");
  if (!decoy.ok()) return decoy.status();
  hasher.decoy_hash_ = *decoy;
  return hasher;
}

PasswordHasher::PasswordHasher(uint64_t passes, uint64_t memory_bytes, Limits limits)
    : passes_(passes),
      memory_bytes_(memory_bytes),
      limits_(limits),
      gate_(std::make_shared<HashGate>(limits.concurrency)) {}

absl::StatusOr<std::string> PasswordHasher::Hash(std::string_view password) const {
  HashGate::Slot slot = gate_->Acquire(absl::Now() + limits_.queue_wait);
  if (!slot.status().ok()) return slot.status();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), passes_, memory_bytes_,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::ResourceExhaustedError("not enough memory to hash the password");
  }
  return std::string(out);
}

absl::StatusOr<bool> PasswordHasher::Verify(std::string_view hash,
                                            std::string_view password) const {
  HashGate::Slot slot = gate_->Acquire(absl::Now() + limits_.queue_wait);
  if (!slot.status().ok()) return slot.status();
  std::string terminated(hash);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

absl::Status PasswordHasher::VerifyNothing(std::string_view password) const {
  return Verify(decoy_hash_, password).status();
}

}  // namespace helpline::identity
