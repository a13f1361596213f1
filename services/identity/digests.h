#pragma once

#include <string>
#include <string_view>

namespace helpline::identity {

// A keyed hash (BLAKE2b) of a normalised email: the EmailClaim aggregate id,
// so no email appears in a Kafka key. `key` is 32 bytes.
std::string EmailClaimId(std::string_view normalised_email, std::string_view key);

// BLAKE2b-256 hex of a refresh token's secret.
std::string HashTokenSecret(std::string_view secret);

}  // namespace helpline::identity
