#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/identity/v1/events.pb.h"

namespace helpline::identity {

// Erasable PII (crypto-shredding): each user has a random 32-byte data key;
// email, name and password hash are sealed with it (XChaCha20-Poly1305).
// The data key is stored in helpline.identity.keys wrapped with a
// key-encryption key from a Secret, and a tombstone there erases it, which
// makes every sealed field of that user unreadable while the events stay.
class PiiVault {
 public:
  // `kek` is 32 bytes.
  static absl::StatusOr<PiiVault> Create(std::string kek, std::string kek_id);

  struct DataKey {
    std::string key_id;  // "<user id>/<uuid>"
    std::string key;     // 32 bytes
    v1::DataKeyRecord record;
  };
  DataKey NewDataKey(const std::string& user_id, absl::Time now) const;
  absl::StatusOr<std::string> Unwrap(const std::string& key_id,
                                     const v1::DataKeyRecord& record) const;

  static v1::SealedText Seal(const std::string& key_id, const std::string& key,
                             std::string_view plaintext);
  static absl::StatusOr<std::string> Open(const v1::SealedText& sealed, const std::string& key);

  // The user a key id belongs to.
  static std::string UserOfKey(const std::string& key_id);

 private:
  PiiVault(std::string kek, std::string kek_id) : kek_(std::move(kek)), kek_id_(std::move(kek_id)) {}
  std::string kek_;
  std::string kek_id_;
};

// A keyed hash (BLAKE2b) of a normalised email: the EmailClaim aggregate id,
// so no email appears in a Kafka key. `key` is 32 bytes.
std::string EmailClaimId(std::string_view normalised_email, std::string_view key);

// BLAKE2b-256 hex of a refresh token's secret.
std::string HashTokenSecret(std::string_view secret);

}  // namespace helpline::identity
