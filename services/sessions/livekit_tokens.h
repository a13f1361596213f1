#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

// LiveKit's tokens, all HS256 JWTs with the API key as issuer and times on
// the wall clock: room tokens participants join with, tokens for LiveKit's
// server API, and the signed Authorization of its webhooks.
namespace helpline::sessions {

struct RoomTokenOptions {
  std::string api_key;
  std::string api_secret;
  absl::Duration ttl = absl::Minutes(10);
};

struct RoomToken {
  std::string token;
  absl::Time expires_at;
};

// `can_publish` false: watch only (an admin looking in).
RoomToken IssueRoomToken(const RoomTokenOptions& options, const std::string& identity,
                         const std::string& room, bool can_publish, absl::Time now);

// A token for LiveKit's RoomService with the video grants `video`
// (e.g. {"roomAdmin": true, "room": "..."}), valid for five minutes.
std::string IssueServerToken(const RoomTokenOptions& options, const nlohmann::json& video,
                             absl::Time now);

// A webhook's Authorization header checked against its raw body before the
// body is read: HS256 signed with the API secret, issued by the API key,
// within its times (a minute's leeway), and its `sha256` claim the base64
// SHA-256 of `body`. UNAUTHENTICATED saying what is wrong otherwise.
absl::Status VerifyWebhook(const RoomTokenOptions& options, std::string_view authorization,
                           std::string_view body, absl::Time now);
// Its first half, before the body is read: the signature, issuer and times;
// the body's SHA-256 (base64) the token vouches for.
absl::StatusOr<std::string> VerifyWebhookToken(const RoomTokenOptions& options,
                                               std::string_view authorization, absl::Time now);

// SHA-256 of `data`, raw bytes.
std::string Sha256(std::string_view data);

// HMAC-SHA256 of `data` with `key`, raw bytes.
std::string HmacSha256(const std::string& key, const std::string& data);

}  // namespace helpline::sessions
