#include "services/identity/digests.h"

#include <sodium.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/identity/domain/identity_domain.h"

namespace helpline::identity {

std::string EmailClaimId(std::string_view normalised_email, std::string_view key) {
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest,
                     reinterpret_cast<const unsigned char*>(normalised_email.data()),
                     normalised_email.size(), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size());
  return absl::StrCat(kEmailClaimPrefix,
                      absl::BytesToHexString(std::string(reinterpret_cast<char*>(digest), 32)));
}

std::string HashTokenSecret(std::string_view secret) {
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size(), nullptr, 0);
  return absl::BytesToHexString(std::string(reinterpret_cast<char*>(digest), 32));
}

}  // namespace helpline::identity
