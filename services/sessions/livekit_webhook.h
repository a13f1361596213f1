#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/sessions/v1/commands.pb.h"

// What LiveKit's webhooks and room listings mean for a session: a room is
// named after its session, a participant's identity is the user id its room
// token named. Pure: times arrive on the wall clock and are turned into the
// service clock's by `to_service_time`.
namespace helpline::sessions {

using ToServiceTime = std::function<absl::Time(absl::Time wall)>;

// A command for the session a webhook is about, with its command id taken
// from the webhook's id (a repeated delivery is the same command).
struct MediaCommand {
  std::string session_id;
  std::string command_id;
  v1::SessionsCommand command;
};

// A verified webhook body (`livekit.WebhookEvent` in protojson) as a
// command: participant_joined (sent when the participant's media flows)
// opens a connection, participant_left and participant_connection_aborted
// close one, room_finished closes all; each at the event's createdAt (whole
// seconds). Other
// events mean nothing to a session (nullopt). INVALID_ARGUMENT naming what
// is missing or malformed.
absl::StatusOr<std::optional<MediaCommand>> CommandFromWebhook(std::string_view body,
                                                               const ToServiceTime& to_service_time);

// One participant as LiveKit's RoomService lists it.
struct ListedParticipant {
  std::string sid;
  std::string identity;
  absl::Time joined_at;  // wall clock
  // Its media flows (ACTIVE); otherwise still joining.
  bool media_connected = false;
};

// Who is in the session's room at `at` (service clock), as a command.
v1::SessionsCommand CommandFromListing(const std::vector<ListedParticipant>& participants,
                                       absl::Time at, const ToServiceTime& to_service_time);

}  // namespace helpline::sessions
