#include "services/runtime/privacy/pii_vault.h"

#include <sodium.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::privacy {
namespace {

std::string Random(size_t bytes) {
  std::string out(bytes, '\0');
  randombytes_buf(out.data(), out.size());
  return out;
}

std::string Encrypt(std::string_view plaintext, std::string_view aad, const std::string& key,
                    const std::string& nonce) {
  std::string ciphertext(plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long length = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(ciphertext.data()), &length,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(nonce.data()),
      reinterpret_cast<const unsigned char*>(key.data()));
  ciphertext.resize(length);
  return ciphertext;
}

absl::StatusOr<std::string> Decrypt(std::string_view ciphertext, std::string_view aad,
                                    const std::string& key, const std::string& nonce) {
  if (key.size() != crypto_aead_xchacha20poly1305_ietf_KEYBYTES ||
      nonce.size() != crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ||
      ciphertext.size() < crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    return absl::DataLossError("sealed data is malformed");
  }
  std::string plaintext(ciphertext.size(), '\0');
  unsigned long long length = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext.data()), &length, nullptr,
          reinterpret_cast<const unsigned char*>(ciphertext.data()), ciphertext.size(),
          reinterpret_cast<const unsigned char*>(aad.data()), aad.size(),
          reinterpret_cast<const unsigned char*>(nonce.data()),
          reinterpret_cast<const unsigned char*>(key.data())) != 0) {
    return absl::DataLossError("sealed data does not open with this key");
  }
  plaintext.resize(length);
  return plaintext;
}

}  // namespace

absl::StatusOr<PiiVault> PiiVault::Create(std::string kek, std::string kek_id) {
  if (sodium_init() < 0) return absl::InternalError("libsodium did not initialise");
  if (kek.size() != crypto_aead_xchacha20poly1305_ietf_KEYBYTES) {
    return absl::InvalidArgumentError("the key-encryption key must be 32 bytes");
  }
  return PiiVault(std::move(kek), std::move(kek_id));
}

PiiVault::DataKey PiiVault::NewDataKey(const std::string& user_id, absl::Time now) const {
  DataKey key;
  key.key_id = absl::StrCat(user_id, "/", ids::NewUuidV7());
  key.key = Random(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
  std::string nonce = Random(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  key.record.set_user_id(user_id);
  key.record.set_wrapped_key(Encrypt(key.key, key.key_id, kek_, nonce));
  key.record.set_nonce(nonce);
  key.record.set_kek_id(kek_id_);
  *key.record.mutable_created_at() = ToProtoTime(now);
  return key;
}

absl::StatusOr<std::string> PiiVault::Unwrap(const std::string& key_id,
                                             const v1::DataKeyRecord& record) const {
  if (record.kek_id() != kek_id_) {
    return absl::FailedPreconditionError(
        absl::StrCat("data key ", key_id, " is wrapped with key-encryption key '",
                     record.kek_id(), "', not the configured '", kek_id_, "'"));
  }
  return Decrypt(record.wrapped_key(), key_id, kek_, record.nonce());
}

v1::SealedText PiiVault::Seal(const std::string& key_id, const std::string& key,
                              std::string_view plaintext) {
  v1::SealedText sealed;
  std::string nonce = Random(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  sealed.set_key_id(key_id);
  sealed.set_ciphertext(Encrypt(plaintext, key_id, key, nonce));
  sealed.set_nonce(nonce);
  return sealed;
}

absl::StatusOr<std::string> PiiVault::Open(const v1::SealedText& sealed, const std::string& key) {
  return Decrypt(sealed.ciphertext(), sealed.key_id(), key, sealed.nonce());
}

std::string PiiVault::SealText(const std::string& key_id, const std::string& key,
                               std::string_view plaintext) {
  // The nonce: BLAKE2b of the text keyed with a key of its own derived from
  // the data key, so equal texts (and only they) share a nonce.
  unsigned char nonce_key[crypto_generichash_KEYBYTES];
  constexpr std::string_view kNonceKeyLabel = "helpline sealed text nonce key";
  crypto_generichash(nonce_key, sizeof nonce_key,
                     reinterpret_cast<const unsigned char*>(kNonceKeyLabel.data()),
                     kNonceKeyLabel.size(), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size());
  std::string nonce(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(nonce.data()), nonce.size(),
                     reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                     nonce_key, sizeof nonce_key);
  sodium_memzero(nonce_key, sizeof nonce_key);
  return absl::StrCat(kSealedTextPrefix, key_id, ":", Base64UrlEncode(nonce), ":",
                      Base64UrlEncode(Encrypt(plaintext, key_id, key, nonce)));
}

std::optional<PiiVault::SealedString> PiiVault::ParseSealed(std::string_view value) {
  if (!IsSealedText(value)) return std::nullopt;
  std::vector<absl::string_view> parts = absl::StrSplit(
      absl::string_view(value.data(), value.size()).substr(sizeof kSealedTextPrefix - 1), ':');
  if (parts.size() != 3 || parts[0].find('/') == absl::string_view::npos) return std::nullopt;
  absl::StatusOr<std::string> nonce = Base64UrlDecode({parts[1].data(), parts[1].size()});
  absl::StatusOr<std::string> ciphertext =
      Base64UrlDecode({parts[2].data(), parts[2].size()});
  if (!nonce.ok() || !ciphertext.ok()) return std::nullopt;
  return SealedString{std::string(parts[0]), *std::move(nonce), *std::move(ciphertext)};
}

absl::StatusOr<std::string> PiiVault::OpenText(const SealedString& sealed, const std::string& key) {
  return Decrypt(sealed.ciphertext, sealed.key_id, key, sealed.nonce);
}

std::string PiiVault::UserOfKey(const std::string& key_id) {
  return key_id.substr(0, key_id.find('/'));
}

}  // namespace helpline::privacy
