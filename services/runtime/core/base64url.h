#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace helpline {

// RFC 4648 §5 base64url without padding, as JWTs, keys and tokens use it.
std::string Base64UrlEncode(std::string_view bytes);
// INVALID_ARGUMENT for anything that is not unpadded base64url.
absl::StatusOr<std::string> Base64UrlDecode(std::string_view text);

}  // namespace helpline
