#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "services/runtime/core/errors.h"

namespace helpline::identity {

// Trimmed and lower-cased; nullopt if it is not a plausible address
// (local@domain.tld, no spaces or control characters, at most 254 bytes).
std::optional<std::string> NormaliseEmail(std::string_view email);

// Adds violations for the password policy (10 to 128 characters, not the
// email) under `field`.
void CheckPassword(std::string_view password, std::string_view email, const std::string& field,
                   errors::Validator& validator);

// 1 to 80 characters of valid UTF-8 without control characters.
void CheckDisplayName(std::string_view name, const std::string& field, errors::Validator& validator);

}  // namespace helpline::identity
