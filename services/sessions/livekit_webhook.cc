#include "services/sessions/livekit_webhook.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::sessions {
namespace {

// protojson writes int64 as a string; accept a number too.
std::optional<int64_t> Int64(const nlohmann::json& object, const char* name) {
  if (!object.is_object() || !object.contains(name)) return std::nullopt;
  const nlohmann::json& value = object[name];
  if (value.is_number_integer()) return value.get<int64_t>();
  int64_t parsed = 0;
  if (value.is_string() && absl::SimpleAtoi(value.get<std::string>(), &parsed)) return parsed;
  return std::nullopt;
}

std::string Text(const nlohmann::json& object, const char* name) {
  if (!object.is_object() || !object.contains(name) || !object[name].is_string()) return "";
  return object[name].get<std::string>();
}

}  // namespace

absl::StatusOr<std::optional<MediaCommand>> CommandFromWebhook(
    std::string_view body, const ToServiceTime& to_service_time) {
  nlohmann::json event = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object()) return errors::InvalidField("body", "is not a JSON object");
  const std::string kind = Text(event, "event");
  const std::string id = Text(event, "id");
  if (kind.empty()) return errors::InvalidField("event", "is required");
  if (id.empty()) return errors::InvalidField("id", "is required");
  const bool opened = kind == "participant_joined";
  const bool closed = kind == "participant_left" || kind == "participant_connection_aborted";
  if (!opened && !closed && kind != "room_finished") return std::nullopt;
  std::optional<int64_t> created_at = Int64(event, "createdAt");
  if (!created_at || *created_at <= 0) return errors::InvalidField("createdAt", "is required");
  absl::Time at = to_service_time(absl::FromUnixSeconds(*created_at));
  MediaCommand out;
  out.session_id = event.contains("room") ? Text(event["room"], "name") : "";
  if (out.session_id.empty()) return errors::InvalidField("room.name", "is required");
  out.command_id = ids::DerivedCommandId(absl::StrCat("livekit:", id), "webhook");
  if (kind == "room_finished") {
    *out.command.mutable_media_participants()->mutable_at() = ToProtoTime(at);
    out.command.mutable_media_participants()->set_room_finished(true);
    return out;
  }
  const nlohmann::json participant =
      event.contains("participant") ? event["participant"] : nlohmann::json::object();
  v1::MediaConnection& change = *out.command.mutable_media_connection();
  change.set_participant_sid(Text(participant, "sid"));
  change.set_identity(Text(participant, "identity"));
  if (change.participant_sid().empty()) return errors::InvalidField("participant.sid", "is required");
  if (change.identity().empty()) return errors::InvalidField("participant.identity", "is required");
  change.set_connected(opened);
  *change.mutable_at() = ToProtoTime(at);
  return out;
}

v1::SessionsCommand CommandFromListing(const std::vector<ListedParticipant>& participants,
                                       absl::Time at, const ToServiceTime& to_service_time) {
  v1::SessionsCommand command;
  v1::MediaParticipants& listed = *command.mutable_media_participants();
  *listed.mutable_at() = ToProtoTime(at);
  for (const ListedParticipant& participant : participants) {
    v1::MediaParticipant& out = *listed.add_participants();
    out.set_participant_sid(participant.sid);
    out.set_identity(participant.identity);
    if (participant.joined_at > absl::UnixEpoch()) {
      *out.mutable_joined_at() = ToProtoTime(to_service_time(participant.joined_at));
    }
    out.set_media_connected(participant.media_connected);
  }
  return command;
}

}  // namespace helpline::sessions
