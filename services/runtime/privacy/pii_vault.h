#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/identity/v1/events.pb.h"
#include "helpline/identity/v1/keys.pb.h"

namespace helpline::privacy {

namespace v1 = identity::v1;

// What every string PiiVault::SealText makes starts with.
inline constexpr char kSealedTextPrefix[] = "hl-sealed:1:";

inline bool IsSealedText(std::string_view value) {
  return value.substr(0, sizeof kSealedTextPrefix - 1) == kSealedTextPrefix;
}

// Erasable PII (crypto-shredding): each user has a random 32-byte data key
// per service; what they typed is sealed with it (XChaCha20-Poly1305).
// The data key is stored in the service's keys topic (helpline.<service>.keys)
// wrapped with a key-encryption key from a Secret, and a tombstone there
// erases it, which makes every sealed field of that user unreadable while the
// events stay. Identity seals email, name and password hash into SealedText
// messages; the other services seal text fields into strings (SealText).
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

  // `plaintext` as one string: "hl-sealed:1:<key id>:<nonce>:<ciphertext>"
  // (base64url). Deterministic: the same text under the same key seals to
  // the same string, so a processor can still tell an unchanged field (the
  // nonce is a keyed hash of the text).
  static std::string SealText(const std::string& key_id, const std::string& key,
                              std::string_view plaintext);
  struct SealedString {
    std::string key_id;
    std::string nonce;
    std::string ciphertext;
  };
  // The parts of a SealText string; nullopt if `value` is not one.
  static std::optional<SealedString> ParseSealed(std::string_view value);
  static absl::StatusOr<std::string> OpenText(const SealedString& sealed, const std::string& key);

  // The user a key id belongs to.
  static std::string UserOfKey(const std::string& key_id);

 private:
  PiiVault(std::string kek, std::string kek_id) : kek_(std::move(kek)), kek_id_(std::move(kek_id)) {}
  std::string kek_;
  std::string kek_id_;
};

}  // namespace helpline::privacy
