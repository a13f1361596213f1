#include "services/sessions/livekit_rooms.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/runtime/auth/jwt.h"

namespace helpline::sessions {
namespace {

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

int64_t Int64Of(const nlohmann::json& object, const char* name) {
  if (!object.is_object() || !object.contains(name)) return 0;
  const nlohmann::json& value = object[name];
  if (value.is_number_integer()) return value.get<int64_t>();
  int64_t parsed = 0;
  if (value.is_string() && absl::SimpleAtoi(value.get<std::string>(), &parsed)) return parsed;
  return 0;
}

}  // namespace

LiveKitRoomService::LiveKitRoomService(LiveKitRoomServiceOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<nlohmann::json> LiveKitRoomService::Call(const std::string& method,
                                                        const nlohmann::json& request,
                                                        const nlohmann::json& grant) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string url = absl::StrCat(options_.api_url, "/twirp/livekit.RoomService/", method);
  std::string body = request.dump();
  std::string authorization =
      "Authorization: Bearer " + IssueServerToken(options_.keys, grant, absl::Now());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, authorization.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers, curl_slist_free_all);
  std::string answer;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.call_timeout)));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  CURLcode sent = curl_easy_perform(curl.get());
  if (sent != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("LiveKit ", method, ": ", curl_easy_strerror(sent)));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  nlohmann::json parsed = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (status != 200) {
    std::string code = auth::StringField(parsed, "code");
    std::string message = absl::StrCat("LiveKit ", method, ": HTTP ", status, " ", code, " ",
                                       parsed.is_object() ? auth::StringField(parsed, "msg") : answer);
    if (code == "not_found") return absl::NotFoundError(message);
    if (status == 401 || status == 403) return absl::PermissionDeniedError(message);
    return absl::UnavailableError(message);
  }
  if (!parsed.is_object()) {
    return absl::UnavailableError(absl::StrCat("LiveKit ", method, ": an answer not JSON"));
  }
  return parsed;
}

absl::StatusOr<std::vector<std::string>> LiveKitRoomService::ListRooms() {
  absl::StatusOr<nlohmann::json> answer =
      Call("ListRooms", nlohmann::json::object(), {{"roomList", true}});
  if (!answer.ok()) return answer.status();
  std::vector<std::string> rooms;
  auto listed = answer->find("rooms");
  if (listed == answer->end() || !listed->is_array()) return rooms;
  for (const nlohmann::json& room : *listed) {
    std::string name = auth::StringField(room, "name");
    if (!name.empty()) rooms.push_back(name);
  }
  return rooms;
}

absl::StatusOr<std::vector<ListedParticipant>> LiveKitRoomService::ListParticipants(
    const std::string& room) {
  absl::StatusOr<nlohmann::json> answer =
      Call("ListParticipants", {{"room", room}}, {{"roomAdmin", true}, {"room", room}});
  if (!answer.ok()) return answer.status();
  std::vector<ListedParticipant> participants;
  auto listed = answer->find("participants");
  if (listed == answer->end() || !listed->is_array()) return participants;
  for (const nlohmann::json& participant : *listed) {
    if (!participant.is_object()) continue;
    // One leaving is gone; one joining is there, but billed only once its
    // media flows (ACTIVE, when participant_joined is sent).
    std::string state = auth::StringField(participant, "state");
    if (state == "DISCONNECTED") continue;
    // Twirp's JSON names fields as the proto does; protojson's names too.
    int64_t joined_ms =
        std::max(Int64Of(participant, "joined_at_ms"), Int64Of(participant, "joinedAtMs"));
    int64_t joined_s = std::max(Int64Of(participant, "joined_at"), Int64Of(participant, "joinedAt"));
    absl::Time joined =
        joined_ms > 0 ? absl::FromUnixMillis(joined_ms) : absl::FromUnixSeconds(joined_s);
    participants.push_back({auth::StringField(participant, "sid"),
                            auth::StringField(participant, "identity"), joined, state == "ACTIVE"});
  }
  return participants;
}

absl::Status LiveKitRoomService::CreateRoom(const std::string& room) {
  return Call("CreateRoom",
              {{"name", room},
               {"empty_timeout", absl::ToInt64Seconds(options_.empty_timeout)},
               {"departure_timeout", absl::ToInt64Seconds(options_.departure_timeout)},
               {"max_participants", 6}},
              {{"roomCreate", true}})
      .status();
}

absl::Status LiveKitRoomService::DeleteRoom(const std::string& room) {
  absl::Status deleted = Call("DeleteRoom", {{"room", room}}, {{"roomCreate", true}}).status();
  if (absl::IsNotFound(deleted)) return absl::OkStatus();
  return deleted;
}

}  // namespace helpline::sessions
