#include "services/sessions/room_token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nlohmann/json.hpp"
#include "services/runtime/auth/jwt.h"

namespace helpline::sessions {

std::string HmacSha256(const std::string& key, const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

RoomToken IssueRoomToken(const RoomTokenOptions& options, const std::string& identity,
                         const std::string& room, bool can_publish, absl::Time now) {
  absl::Time expires = now + options.ttl;
  nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  nlohmann::json claims = {
      {"iss", options.api_key},
      {"sub", identity},
      {"nbf", absl::ToUnixSeconds(now)},
      {"exp", absl::ToUnixSeconds(expires)},
      {"video",
       {{"room", room},
        {"roomJoin", true},
        {"canPublish", can_publish},
        {"canSubscribe", true},
        {"canPublishData", can_publish}}}};
  std::string signing_input =
      auth::Base64UrlEncode(header.dump()) + "." + auth::Base64UrlEncode(claims.dump());
  std::string signature = auth::Base64UrlEncode(HmacSha256(options.api_secret, signing_input));
  return {signing_input + "." + signature, expires};
}

}  // namespace helpline::sessions
