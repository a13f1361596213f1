#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/server/http_endpoint.h"
#include "services/sessions/domain/read_model.h"
#include "services/sessions/livekit_rooms.h"
#include "services/sessions/livekit_tokens.h"
#include "services/sessions/livekit_webhook.h"

// Sessions and the media server's rooms kept in step: LiveKit's webhooks
// become commands, rooms are listed while sessions run (a lost webhook is
// caught up) and deleted when sessions are over.
namespace helpline::sessions {

struct LiveRoomsParts {
  es::Front& front;
  SessionsReadModel& read_model;
  const SystemClock& clock;
  prometheus::Registry& metrics;
};

// POST /livekit/webhook: verified (401 with nothing written otherwise),
// turned into a command for the session the room is named after, answered
// 200 once the command is decided (durable), 503 when it cannot be (LiveKit
// retries), 400 for a body that is not a webhook.
class WebhookReceiver {
 public:
  WebhookReceiver(RoomTokenOptions keys, LiveRoomsParts parts);
  // Before the body is read: the content type and the Authorization's
  // signature, issuer and times.
  std::optional<server::HttpResponse> CheckHeaders(const server::HttpRequest& request);
  server::HttpResponse Handle(const server::HttpRequest& request);

 private:
  server::HttpResponse Count(const std::string& event, const std::string& result,
                             server::HttpResponse response);

  const RoomTokenOptions keys_;
  LiveRoomsParts parts_;
  prometheus::Family<prometheus::Counter>& received_;
};

struct RoomKeeperOptions {
  // How often rooms are listed and sessions' connections checked (those
  // whose connections the media server reports, whatever new sessions use).
  absl::Duration sync_interval = absl::Seconds(30);
};

// One thread: deletes the room of every session that is over (within a
// second of its end, retried until LiveKit confirms) and, every sync
// interval, lists the rooms: those of sessions over are deleted, and each
// running session's participants are sent as a MediaParticipants command.
class RoomKeeper {
 public:
  RoomKeeper(RoomKeeperOptions options, MediaRooms& rooms, LiveRoomsParts parts);
  ~RoomKeeper();

  // Once the read model has caught up.
  absl::Status Start();
  void Stop();

 private:
  void Run();
  void DeleteClosedRooms();
  void Sync();

  const RoomKeeperOptions options_;
  MediaRooms& rooms_;
  LiveRoomsParts parts_;
  prometheus::Family<prometheus::Counter>& calls_;
  // Rooms to delete, each with when to try it next.
  std::map<std::string, absl::Time> to_delete_;
  // The last listing LiveKit answered, and whether one failed since.
  absl::Time last_listed_at_ = absl::InfinitePast();
  bool unreachable_since_listed_ = false;
  absl::Notification stop_;
  std::thread thread_;
};

// LiveKit's side of sessions as the config asks for it
// (sessions.livekit_api_url, sessions.webhook_listen, sessions.room_sync_interval):
// its rooms (created on join, closed when sessions are over, listed to catch
// up with lost webhooks) and the webhook endpoint.
class LiveMedia {
 public:
  LiveMedia(const server::Config& config, const RoomTokenOptions& keys, LiveRoomsParts parts);

  // The endpoint starts with the host's parts (its port is in the ports
  // file), the room keeper once the read model has caught up.
  void AddTo(es::ServiceHost& host);
  // Null where Helpline does not manage LiveKit's rooms.
  MediaRooms* rooms() { return rooms_.get(); }

 private:
  const std::string webhook_listen_;
  std::unique_ptr<LiveKitRoomService> rooms_;
  std::unique_ptr<RoomKeeper> keeper_;
  std::unique_ptr<WebhookReceiver> webhooks_;
  std::unique_ptr<server::HttpEndpoint> endpoint_;
};

}  // namespace helpline::sessions
