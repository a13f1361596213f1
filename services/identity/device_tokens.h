#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "services/runtime/core/clock.h"

namespace helpline::identity {

// Proof that a device signed in to an account before (OWASP's "device
// cookies"): sign-ins that present one count against a bucket of that
// device's own, so that failed guesses from anywhere else cannot lock the
// account's owner out of a device they used before. A token names its
// account (the email claim), a random device id and an expiry, under a MAC
// only identity can make.
class DeviceTokens {
 public:
  // `key`: identity's email hash key (the MAC key is derived from it).
  // `account` below: who the token is for (AccountBinding).
  DeviceTokens(std::string_view key, absl::Duration lifetime, const Clock& clock);

  std::string Issue(const std::string& account, const std::string& device_id) const;
  // The device id of a token issued for this account that has not expired;
  // nullopt for anything else (another account's, an earlier password's,
  // forged, expired, garbage).
  std::optional<std::string> Check(std::string_view token, const std::string& account) const;
  // A user's binding: their id and a digest of their sealed password hash.
  static std::string AccountBinding(const std::string& user_id,
                                    const std::string& sealed_password_hash);

  static std::string NewDeviceId();

 private:
  std::string Mac(const std::string& account, const std::string& device_id,
                  const std::string& expiry) const;

  std::string key_;
  absl::Duration lifetime_;
  const Clock& clock_;
};

}  // namespace helpline::identity
