#include "services/identity/device_tokens.h"

#include <sodium.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/runtime/core/base64url.h"

namespace helpline::identity {
namespace {

std::string Blake2b(std::string_view message, std::string_view key) {
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size(), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size());
  return std::string(reinterpret_cast<char*>(digest), sizeof digest);
}

// A key of its own for the MACs, derived from the email hash key (32 bytes).
std::string DeriveKey(std::string_view key) {
  std::string master = key.size() == crypto_kdf_KEYBYTES ? std::string(key) : Blake2b(key, "");
  std::string derived(32, '\0');
  crypto_kdf_derive_from_key(reinterpret_cast<unsigned char*>(derived.data()), derived.size(), 1,
                             "hldevtok", reinterpret_cast<const unsigned char*>(master.data()));
  return derived;
}

}  // namespace

DeviceTokens::DeviceTokens(std::string_view key, absl::Duration lifetime, const Clock& clock)
    : key_(DeriveKey(key)), lifetime_(lifetime), clock_(clock) {}

std::string DeviceTokens::AccountBinding(const std::string& user_id,
                                         const std::string& sealed_password_hash) {
  return absl::StrCat(user_id, "\n", Base64UrlEncode(Blake2b(sealed_password_hash, "")));
}

std::string DeviceTokens::NewDeviceId() {
  std::string id(16, '\0');
  randombytes_buf(id.data(), id.size());
  return Base64UrlEncode(id);
}

std::string DeviceTokens::Mac(const std::string& account, const std::string& device_id,
                              const std::string& expiry) const {
  return Base64UrlEncode(
      Blake2b(absl::StrCat(account, "\n", device_id, "\n", expiry), key_));
}

std::string DeviceTokens::Issue(const std::string& account, const std::string& device_id) const {
  std::string expiry = absl::StrCat(absl::ToUnixSeconds(clock_.Now() + lifetime_));
  return absl::StrCat(device_id, ".", expiry, ".", Mac(account, device_id, expiry));
}

std::optional<std::string> DeviceTokens::Check(std::string_view token,
                                               const std::string& account) const {
  if (token.empty() || token.size() > 200) return std::nullopt;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(token.data(), token.size()), '.');
  if (parts.size() != 3 || parts[0].empty()) return std::nullopt;
  int64_t expiry;
  if (!absl::SimpleAtoi(parts[1], &expiry) || absl::FromUnixSeconds(expiry) < clock_.Now()) {
    return std::nullopt;
  }
  std::string expected = Mac(account, std::string(parts[0]), std::string(parts[1]));
  if (expected.size() != parts[2].size() ||
      sodium_memcmp(expected.data(), parts[2].data(), expected.size()) != 0) {
    return std::nullopt;
  }
  return std::string(parts[0]);
}

}  // namespace helpline::identity
