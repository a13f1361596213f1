#include "services/runtime/auth/jwt.h"

#include <sodium.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace helpline::auth {
namespace {

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

absl::Status Malformed(std::string_view what) {
  return absl::UnauthenticatedError(absl::StrCat("malformed access token: ", std::string(what)));
}

}  // namespace

Ed25519Key Ed25519Key::FromSeed(std::string kid, std::string_view seed32) {
  SodiumReady();
  Ed25519Key key;
  key.kid = std::move(kid);
  key.secret_key.resize(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(key.public_key.data(),
                           reinterpret_cast<unsigned char*>(key.secret_key.data()),
                           reinterpret_cast<const unsigned char*>(seed32.data()));
  return key;
}

Ed25519Key Ed25519Key::Generate(std::string kid) {
  SodiumReady();
  std::string seed(crypto_sign_SEEDBYTES, '\0');
  randombytes_buf(seed.data(), seed.size());
  Ed25519Key key = FromSeed(std::move(kid), seed);
  sodium_memzero(seed.data(), seed.size());
  return key;
}

std::string Ed25519Key::seed() const { return secret_key.substr(0, crypto_sign_SEEDBYTES); }

std::string SignToken(const AccessClaims& claims, const Ed25519Key& key) {
  SodiumReady();
  nlohmann::json header = {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", key.kid}};
  nlohmann::json payload = {{"iss", claims.issuer},
                            {"aud", claims.audience},
                            {"sub", claims.subject},
                            {"roles", claims.roles},
                            {"jti", claims.token_id},
                            {"iat", absl::ToUnixSeconds(claims.issued_at)},
                            {"nbf", absl::ToUnixSeconds(claims.issued_at)},
                            {"exp", absl::ToUnixSeconds(claims.expires_at)}};
  std::string input =
      absl::StrCat(Base64UrlEncode(header.dump()), ".", Base64UrlEncode(payload.dump()));
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size(), reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  return absl::StrCat(input, ".",
                      Base64UrlEncode(std::string_view(reinterpret_cast<char*>(signature),
                                                       sizeof signature)));
}

absl::StatusOr<ParsedToken> ParseToken(std::string_view token) {
  if (token.size() > 8192) return Malformed("longer than 8 KiB");
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(token.data(), token.size()), '.');
  if (parts.size() != 3) return Malformed("not three dot-separated parts");
  ParsedToken parsed;
  absl::StatusOr<std::string> header = Base64UrlDecode(std::string(parts[0]));
  absl::StatusOr<std::string> claims = Base64UrlDecode(std::string(parts[1]));
  absl::StatusOr<std::string> signature = Base64UrlDecode(std::string(parts[2]));
  if (!header.ok() || !claims.ok() || !signature.ok()) return Malformed("not base64url");
  parsed.header = nlohmann::json::parse(*header, nullptr, false);
  parsed.claims = nlohmann::json::parse(*claims, nullptr, false);
  if (!parsed.header.is_object()) return Malformed("header is not a JSON object");
  if (!parsed.claims.is_object()) return Malformed("claims are not a JSON object");
  parsed.signing_input = absl::StrCat(parts[0], ".", parts[1]);
  parsed.signature = *std::move(signature);
  return parsed;
}

std::string StringField(const nlohmann::json& object, const char* name) {
  if (!object.is_object()) return "";
  auto found = object.find(name);
  if (found == object.end() || !found->is_string()) return "";
  return found->get<std::string>();
}

bool VerifySignature(const ParsedToken& token, const Ed25519Key& key) {
  SodiumReady();
  if (token.signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(token.signature.data()),
             reinterpret_cast<const unsigned char*>(token.signing_input.data()),
             token.signing_input.size(), key.public_key.data()) == 0;
}

}  // namespace helpline::auth
