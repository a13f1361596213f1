#include "services/sessions/livekit_tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/base64url.h"

namespace helpline::sessions {
namespace {

constexpr absl::Duration kLeeway = absl::Minutes(1);
constexpr absl::Duration kServerTokenTtl = absl::Minutes(5);

std::string SignHs256(const RoomTokenOptions& options, const nlohmann::json& claims) {
  nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  std::string signing_input =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  return signing_input + "." + Base64UrlEncode(HmacSha256(options.api_secret, signing_input));
}

bool SameBytes(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::Status Refused(const std::string& why) {
  return absl::UnauthenticatedError("webhook refused: " + why);
}

}  // namespace

std::string Sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

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
  nlohmann::json claims = {
      {"iss", options.api_key},
      {"sub", identity},
      {"iat", absl::ToUnixSeconds(now)},
      {"nbf", absl::ToUnixSeconds(now)},
      {"exp", absl::ToUnixSeconds(expires)},
      {"video",
       {{"room", room},
        {"roomJoin", true},
        {"canPublish", can_publish},
        {"canSubscribe", true},
        {"canPublishData", can_publish}}}};
  return {SignHs256(options, claims), expires};
}

std::string IssueServerToken(const RoomTokenOptions& options, const nlohmann::json& video,
                             absl::Time now) {
  nlohmann::json claims = {{"iss", options.api_key},
                           {"sub", options.api_key},
                           {"iat", absl::ToUnixSeconds(now)},
                           {"nbf", absl::ToUnixSeconds(now)},
                           {"exp", absl::ToUnixSeconds(now + kServerTokenTtl)},
                           {"video", video}};
  return SignHs256(options, claims);
}

absl::StatusOr<std::string> VerifyWebhookToken(const RoomTokenOptions& options,
                                               std::string_view authorization, absl::Time now) {
  if (authorization.empty()) return Refused("no Authorization header");
  // LiveKit sends the bare token; accept the usual prefix too.
  if (authorization.substr(0, 7) == "Bearer ") authorization.remove_prefix(7);
  absl::StatusOr<auth::ParsedToken> token = auth::ParseToken(authorization);
  if (!token.ok()) return Refused(std::string(token.status().message()));
  if (auth::StringField(token->header, "alg") != "HS256") return Refused("only alg HS256 is accepted");
  if (auth::StringField(token->claims, "iss") != options.api_key) return Refused("unknown API key");
  if (!SameBytes(HmacSha256(options.api_secret, token->signing_input), token->signature)) {
    return Refused("bad signature");
  }
  const nlohmann::json& claims = token->claims;
  if (!claims.contains("exp") || !claims["exp"].is_number_integer()) return Refused("no exp");
  if (now > absl::FromUnixSeconds(claims["exp"].get<int64_t>()) + kLeeway) {
    return Refused("expired");
  }
  if (claims.contains("nbf")) {
    if (!claims["nbf"].is_number_integer()) return Refused("bad nbf");
    if (now + kLeeway < absl::FromUnixSeconds(claims["nbf"].get<int64_t>())) {
      return Refused("not valid yet");
    }
  }
  std::string body_hash = auth::StringField(claims, "sha256");
  if (body_hash.empty()) return Refused("no sha256");
  return body_hash;
}

absl::Status VerifyWebhook(const RoomTokenOptions& options, std::string_view authorization,
                           std::string_view body, absl::Time now) {
  absl::StatusOr<std::string> body_hash = VerifyWebhookToken(options, authorization, now);
  if (!body_hash.ok()) return body_hash.status();
  if (!SameBytes(absl::Base64Escape(Sha256(body)), *body_hash)) {
    return Refused("the body is not the one signed");
  }
  return absl::OkStatus();
}

}  // namespace helpline::sessions
