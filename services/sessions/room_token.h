#pragma once

#include <string>

#include "absl/time/time.h"

// Room tokens for a LiveKit server: HS256 JWTs with the API key as issuer,
// the user id as identity and a video grant for one room.
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

// HMAC-SHA256 of `data` with `key`, raw bytes.
std::string HmacSha256(const std::string& key, const std::string& data);

}  // namespace helpline::sessions
