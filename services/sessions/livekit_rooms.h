#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/sessions/livekit_tokens.h"
#include "services/sessions/livekit_webhook.h"

// The media server's rooms as sessions use them: one room per session,
// named after it, created when someone is about to join and deleted when
// the session is over.
namespace helpline::sessions {

class MediaRooms {
 public:
  virtual ~MediaRooms() = default;
  virtual absl::StatusOr<std::vector<std::string>> ListRooms() = 0;
  // Everyone in the room who has not left.
  virtual absl::StatusOr<std::vector<ListedParticipant>> ListParticipants(
      const std::string& room) = 0;
  // Idempotent.
  virtual absl::Status CreateRoom(const std::string& room) = 0;
  // Disconnects everyone in it. A room that is not there is deleted already.
  virtual absl::Status DeleteRoom(const std::string& room) = 0;
};

struct LiveKitRoomServiceOptions {
  std::string api_url;  // "http://127.0.0.1:7880"
  RoomTokenOptions keys;
  // A room nobody joins closes after this; one everybody left, after
  // departure_timeout.
  absl::Duration empty_timeout = absl::Minutes(5);
  absl::Duration departure_timeout = absl::Seconds(20);
  absl::Duration call_timeout = absl::Seconds(5);
};

// LiveKit's RoomService (Twirp, JSON over HTTP), each call with a token of
// its own on the wall clock.
class LiveKitRoomService : public MediaRooms {
 public:
  explicit LiveKitRoomService(LiveKitRoomServiceOptions options);

  absl::StatusOr<std::vector<std::string>> ListRooms() override;
  absl::StatusOr<std::vector<ListedParticipant>> ListParticipants(
      const std::string& room) override;
  absl::Status CreateRoom(const std::string& room) override;
  absl::Status DeleteRoom(const std::string& room) override;

 private:
  // The answer's JSON; a Twirp error as a status (its code "not_found" as
  // NOT_FOUND), anything unreachable as UNAVAILABLE.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const nlohmann::json& request,
                                      const nlohmann::json& grant);

  const LiveKitRoomServiceOptions options_;
};

}  // namespace helpline::sessions
