#include "services/sessions/live_rooms.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/server/log.h"
#include "services/sessions/domain/sessions_domain.h"

namespace helpline::sessions {
namespace {

constexpr char kActor[] = "livekit";

// A bounded label: the events a session cares about, the rest as "other".
std::string EventLabel(const std::string& event) {
  for (const char* known : {"participant_joined", "participant_left",
                            "participant_connection_aborted", "room_finished", "room_started",
                            "track_published", "track_unpublished"}) {
    if (event == known) return event;
  }
  return "other";
}

ToServiceTime ServiceTimeOf(const SystemClock& clock) {
  return [&clock](absl::Time wall) { return clock.FromWall(wall); };
}

}  // namespace

WebhookReceiver::WebhookReceiver(RoomTokenOptions keys, LiveRoomsParts parts)
    : keys_(std::move(keys)),
      parts_(parts),
      received_(prometheus::BuildCounter()
                    .Name("helpline_sessions_webhooks_total")
                    .Help("LiveKit webhooks received, by event and what became of them")
                    .Register(parts.metrics)) {}

server::HttpResponse WebhookReceiver::Count(const std::string& event, const std::string& result,
                                            server::HttpResponse response) {
  received_.Add({{"event", EventLabel(event)}, {"result", result}}).Increment();
  return response;
}

std::optional<server::HttpResponse> WebhookReceiver::CheckHeaders(
    const server::HttpRequest& request) {
  if (!absl::StartsWith(request.Header("content-type"), "application/webhook+json")) {
    return Count("", "refused", {415, "Content-Type must be application/webhook+json\n"});
  }
  if (absl::StatusOr<std::string> signed_hash =
          VerifyWebhookToken(keys_, request.Header("authorization"), absl::Now());
      !signed_hash.ok()) {
    return Count("", "refused", {401, std::string(signed_hash.status().message()) + "\n"});
  }
  return std::nullopt;
}

server::HttpResponse WebhookReceiver::Handle(const server::HttpRequest& request) {
  if (std::optional<server::HttpResponse> refused = CheckHeaders(request)) return *refused;
  if (absl::Status verified =
          VerifyWebhook(keys_, request.Header("authorization"), request.body, absl::Now());
      !verified.ok()) {
    return Count("", "refused", {401, std::string(verified.message()) + "\n"});
  }
  absl::StatusOr<std::optional<MediaCommand>> parsed =
      CommandFromWebhook(request.body, ServiceTimeOf(parts_.clock));
  if (!parsed.ok()) return Count("", "invalid", {400, parsed.status().ToString() + "\n"});
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
  std::string event = auth::StringField(body, "event");
  if (!parsed->has_value()) return Count(event, "ignored", {200, "nothing for a session\n"});
  MediaCommand& media = **parsed;
  absl::Status decided = parts_.front.Write(
      media.command, es::CommandOrigin::ByHelpline(media.session_id, media.command_id, kActor));
  if (decided.ok()) return Count(event, "accepted", {200, "recorded\n"});
  if (absl::IsUnavailable(decided) || absl::IsDeadlineExceeded(decided) ||
      absl::IsAborted(decided) || absl::IsResourceExhausted(decided) ||
      absl::IsInternal(decided) || absl::IsUnknown(decided)) {
    return Count(event, "unavailable", {503, decided.ToString() + "\n"});
  }
  // Decided and refused (a room that is no session of ours): nothing to retry.
  log::Warn("webhook refused by the session",
            {{"session_id", media.session_id}, {"event", event}, {"error", decided.ToString()}});
  return Count(event, "refused_by_session", {200, decided.ToString() + "\n"});
}

RoomKeeper::RoomKeeper(RoomKeeperOptions options, MediaRooms& rooms, LiveRoomsParts parts)
    : options_(options),
      rooms_(rooms),
      parts_(parts),
      calls_(prometheus::BuildCounter()
                 .Name("helpline_sessions_livekit_calls_total")
                 .Help("Calls to LiveKit's RoomService, by method and result")
                 .Register(parts.metrics)) {}

RoomKeeper::~RoomKeeper() { Stop(); }

absl::Status RoomKeeper::Start() {
  // What ended before this process started is covered by the first listing.
  parts_.read_model.TakeSessionsOver();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void RoomKeeper::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void RoomKeeper::Run() {
  absl::Time next_sync = absl::Now();
  while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    try {
      DeleteClosedRooms();
      if (absl::Now() >= next_sync) {
        Sync();
        next_sync = absl::Now() + options_.sync_interval;
      }
    } catch (const std::exception& error) {  // an answer of a shape nobody expected
      log::Error("room keeping failed; trying again", {{"error", error.what()}});
      next_sync = absl::Now() + options_.sync_interval;
    }
  }
}

void RoomKeeper::DeleteClosedRooms() {
  for (std::string& session_id : parts_.read_model.TakeSessionsOver()) {
    to_delete_.try_emplace(std::move(session_id), absl::InfinitePast());
  }
  const absl::Time now = absl::Now();
  for (auto it = to_delete_.begin(); it != to_delete_.end();) {
    if (it->second > now) {  // failed lately: its turn comes again later
      ++it;
      continue;
    }
    absl::Status deleted = rooms_.DeleteRoom(it->first);
    calls_.Add({{"method", "DeleteRoom"}, {"result", deleted.ok() ? "ok" : "error"}}).Increment();
    if (deleted.ok()) {
      it = to_delete_.erase(it);
      continue;
    }
    log::Warn("cannot close the room of a session that is over; retrying",
              {{"session_id", it->first}, {"error", deleted.ToString()}});
    if (absl::IsUnavailable(deleted)) break;  // LiveKit is away: the next round tries again
    it->second = now + options_.sync_interval;
    ++it;
  }
}

void RoomKeeper::Sync() {
  // A listing stands for the moment before it was asked: a connection opened
  // later is not in it (the domain leaves such connections open).
  absl::Time rooms_listed_at = parts_.clock.Now();
  absl::StatusOr<std::vector<std::string>> rooms = rooms_.ListRooms();
  calls_.Add({{"method", "ListRooms"}, {"result", rooms.ok() ? "ok" : "error"}}).Increment();
  if (!rooms.ok()) {
    log::Warn("cannot list LiveKit's rooms", {{"error", rooms.status().ToString()}});
    unreachable_since_listed_ = true;
    return;
  }
  // After LiveKit was unreachable, whoever is gone (with the rooms a restart
  // loses, or left unreported) was last seen at the last listing before:
  // nobody is billed for the outage.
  const bool after_outage = unreachable_since_listed_ && last_listed_at_ != absl::InfinitePast();
  const absl::Time gone_at = after_outage ? last_listed_at_ : rooms_listed_at;
  unreachable_since_listed_ = false;
  last_listed_at_ = rooms_listed_at;
  for (const std::string& room : *rooms) {
    std::optional<v1::Session> session = parts_.read_model.Session(room);
    if (session && SessionIsOver(session->status())) to_delete_.try_emplace(room, absl::InfinitePast());
  }
  DeleteClosedRooms();
  const absl::flat_hash_set<std::string> existing(rooms->begin(), rooms->end());
  for (const v1::Session& session : parts_.read_model.RunningMediaSessions()) {
    bool has_room = existing.contains(session.session_id());
    // Without a room nobody can be in it; with nobody connected and no
    // room there is nothing to catch up.
    if (!has_room && !session.person_connected() && !session.expert_connected()) continue;
    absl::Time at = has_room && !after_outage ? parts_.clock.Now() : gone_at;
    std::vector<ListedParticipant> participants;
    if (has_room) {
      absl::StatusOr<std::vector<ListedParticipant>> listed =
          rooms_.ListParticipants(session.session_id());
      calls_.Add({{"method", "ListParticipants"}, {"result", listed.ok() ? "ok" : "error"}})
          .Increment();
      if (!listed.ok()) {
        // A room that finished since it was listed has nobody in it.
        if (!absl::IsNotFound(listed.status())) continue;
      } else {
        participants = *std::move(listed);
      }
    }
    v1::SessionsCommand command =
        CommandFromListing(participants, at, ServiceTimeOf(parts_.clock));
    std::string command_id = ids::DerivedCommandId(
        absl::StrCat("room-sync:", session.session_id()), absl::FormatTime(at));
    if (absl::Status sent = parts_.front.Write(
            command, es::CommandOrigin::ByHelpline(session.session_id(), command_id, kActor));
        !sent.ok()) {
      log::Warn("cannot record a room's participants",
                {{"session_id", session.session_id()}, {"error", sent.ToString()}});
    }
  }
}

LiveMedia::LiveMedia(const server::Config& config, const RoomTokenOptions& keys,
                     LiveRoomsParts parts)
    : webhook_listen_(config.GetString("sessions.webhook_listen")) {
  if (const std::string& api_url = config.GetString("sessions.livekit_api_url"); !api_url.empty()) {
    LiveKitRoomServiceOptions room_options;
    room_options.api_url = api_url;
    room_options.keys = keys;
    rooms_ = std::make_unique<LiveKitRoomService>(room_options);
    RoomKeeperOptions keeper_options;
    keeper_options.sync_interval = config.GetDuration("sessions.room_sync_interval");
    keeper_ = std::make_unique<RoomKeeper>(keeper_options, *rooms_, parts);
  }
  if (!webhook_listen_.empty()) {
    webhooks_ = std::make_unique<WebhookReceiver>(keys, parts);
    endpoint_ = std::make_unique<server::HttpEndpoint>(
        "/livekit/webhook",
        [this](const server::HttpRequest& request) { return webhooks_->Handle(request); },
        64 << 10,
        [this](const server::HttpRequest& request) { return webhooks_->CheckHeaders(request); });
  }
}

void LiveMedia::AddTo(es::ServiceHost& host) {
  if (endpoint_ != nullptr) {
    host.AddPart({"webhook endpoint",
                  [this, &host]() -> absl::Status {
                    if (absl::Status serving = endpoint_->Serve(webhook_listen_); !serving.ok()) {
                      return serving;
                    }
                    host.server.AddPort("webhook", endpoint_->port());
                    log::Info("receiving LiveKit's webhooks", {{"port", endpoint_->port()}});
                    return absl::OkStatus();
                  },
                  [this] { endpoint_->Stop(); },
                  {}});
  }
  if (keeper_ != nullptr) host.AddLoop("room keeper", *keeper_);
}

}  // namespace helpline::sessions
