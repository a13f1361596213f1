#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/base64url.h"

// Compact JWS access tokens signed with Ed25519 (RFC 8037, "alg": "EdDSA").
namespace helpline::auth {

// An Ed25519 key pair with its key id; `secret_key` is empty for a key that
// only verifies.
struct Ed25519Key {
  std::string kid;
  std::array<uint8_t, 32> public_key{};
  std::string secret_key;  // 64 bytes (libsodium layout: seed || public key)

  static Ed25519Key FromSeed(std::string kid, std::string_view seed32);
  static Ed25519Key Generate(std::string kid);
  std::string seed() const;  // the 32-byte seed of a signing key
};

struct AccessClaims {
  std::string issuer;
  std::string audience;
  std::string subject;  // user id
  std::vector<std::string> roles;
  std::string token_id;  // jti
  absl::Time issued_at;
  absl::Time expires_at;
};

std::string SignToken(const AccessClaims& claims, const Ed25519Key& key);

// A token taken apart, before any check: its header and claims, what was
// signed and the signature.
struct ParsedToken {
  nlohmann::json header;
  nlohmann::json claims;
  std::string signing_input;  // "<header>.<payload>" as received
  std::string signature;
};

// UNAUTHENTICATED naming what is malformed.
absl::StatusOr<ParsedToken> ParseToken(std::string_view token);

// `object[name]` if it is a string, else "" (a header or claim of another
// type is as good as absent; json's value() would throw).
std::string StringField(const nlohmann::json& object, const char* name);

bool VerifySignature(const ParsedToken& token, const Ed25519Key& key);

}  // namespace helpline::auth
