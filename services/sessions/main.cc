// helpline-sessions: the live call's lifecycle - sessions created from
// matching's matches and bookings, joins with room tokens, metering of the
// time both are connected, reviews and refund requests.
#include <curl/curl.h>

#include <memory>

#include "helpline/matching/v1/events.pb.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/privacy/personal_text.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/server.h"
#include "services/sessions/domain/reactions.h"
#include "services/sessions/domain/read_model.h"
#include "services/sessions/domain/sessions_domain.h"
#include "services/sessions/live_rooms.h"
#include "services/sessions/livekit_rooms.h"
#include "services/sessions/sessions_service.h"

namespace helpline::sessions {
namespace {

constexpr char kService[] = "sessions";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  server::AddServerKeys(schema);
  kafka::AddKafkaKeys(schema);
  es::AddProcessorKeys(schema);
  AddClockKeys(schema);
  auth::AddAuthKeys(schema);
  privacy::AddPersonalTextKeys(schema);
  auth::AddIdentityTargetKey(schema);
  schema.String("topics.prefix", "", "prepended to every topic and group name (tests)")
      .String("sessions.livekit_url", "ws://127.0.0.1:7880", "the LiveKit server frontends join")
      .String("sessions.livekit_api_key", "helpline", "the LiveKit API key (the tokens' issuer)")
      .Secret("sessions.livekit_api_secret", "the LiveKit API secret tokens are signed with")
      .Duration("sessions.room_token_ttl", absl::Minutes(10), absl::Minutes(1), absl::Hours(6),
                "how long a room token lets its holder in")
      .String("sessions.livekit_api_url", "",
              "LiveKit's server API (http://host:7880): rooms are created on join and deleted "
              "when sessions end; empty: no calls to LiveKit")
      .OneOf("sessions.connections_from", "apps", {"apps", "media_server"},
             "who says when participants are connected (what is billed): the apps' Join and "
             "Leave calls, or LiveKit's webhooks (needs livekit_api_url and webhook_listen)")
      .String("sessions.webhook_listen", "",
              "host:port where LiveKit's webhooks are received (POST /livekit/webhook); "
              "port 0 picks one; empty: none")
      .Duration("sessions.room_sync_interval", absl::Seconds(30), absl::Seconds(1),
                absl::Minutes(5),
                "how often running sessions' rooms are listed to catch up with lost webhooks")
      .Duration("sessions.help_now_join_window", absl::Minutes(3), absl::Seconds(10),
                absl::Hours(1), "both join within this after a match, or it is a no-show")
      .Duration("sessions.booked_join_window", absl::Minutes(10), absl::Seconds(10),
                absl::Hours(2), "both join within this after a booked slot's start")
      .Duration("sessions.grace_period", absl::Minutes(2), absl::Seconds(5), absl::Hours(1),
                "how long a dropped participant has to come back")
      .Duration("sessions.review_window", absl::Hours(24 * 14), absl::Minutes(1),
                absl::Hours(24 * 365), "the person reviews within this after the end")
      .Duration("sessions.refund_window", absl::Hours(72), absl::Minutes(1),
                absl::Hours(24 * 365), "the person asks for a refund within this after the end")
      .Double("sessions.requests_per_second_per_caller", 20, 0.1, 1e6,
              "calls a user makes per second (burst: 5 times that)");
  return schema;
}

int Main(int argc, char** argv) {
  server::ShutdownSignal shutdown;
  server::Config config = server::LoadConfigOrExit(Schema(), argc, argv);
  server::InitLogging(kService, config);
  log::Info("starting", {{"config", config.Describe()}});
  if (config.GetString("sessions.livekit_api_secret").empty()) {
    log::Error("bad config: sessions.livekit_api_secret is required (from a Secret)");
    return 2;
  }
  const bool from_media_server = config.GetString("sessions.connections_from") == "media_server";
  const std::string livekit_api_url = config.GetString("sessions.livekit_api_url");
  const std::string webhook_listen = config.GetString("sessions.webhook_listen");
  if (from_media_server && (livekit_api_url.empty() || webhook_listen.empty())) {
    log::Error(
        "bad config: sessions.connections_from media_server needs sessions.livekit_api_url and "
        "sessions.webhook_listen");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);

  es::ServiceHost host(kService, config, SessionsType());
  const std::string& prefix = host.prefix;
  const es::ServiceTopics& topics = host.topics;


  SessionsReadModel read_model;
  // Reviews and refund reasons stay sealed in the read model, opened per
  // answer; the feed reads their keys first, so an answer does not wait.
  std::unique_ptr<privacy::PersonalText> personal = privacy::PersonalText::FromConfigOrExit(
      *host.kafka, config, {topics.keys, topics.deadletter, "sessions.personal-keys"},
      [&](const std::string& user_id) { return host.closed_accounts.IsClosed(user_id); });
  es::EventFeed events(*host.kafka,
                       {topics.events, topics.deadletter, "sessions.read-model",
                        [&](google::protobuf::Message& event) {
                          return personal->ReadKeysOf(event, absl::Now() + absl::Seconds(5));
                        }},
                       [] { return std::make_unique<v1::SessionsEvent>(); }, read_model);

  SessionWindows windows;
  windows.help_now_join_window = config.GetDuration("sessions.help_now_join_window");
  windows.booked_join_window = config.GetDuration("sessions.booked_join_window");
  windows.grace_period = config.GetDuration("sessions.grace_period");
  windows.connection_source =
      from_media_server ? v1::CONNECTION_SOURCE_MEDIA_SERVER : v1::CONNECTION_SOURCE_APPS;
  es::TypedReaction<matching::v1::MatchingEvent, v1::SessionsCommand> from_matching(
      [windows](const matching::v1::MatchingEvent& event) {
        return SessionsFromMatching(event, windows);
      });

  // A hold the card or the sponsor's budget refused cancels the session.
  es::TypedReaction<payments::v1::PaymentsEvent, v1::SessionsCommand> from_payments(
      SessionsFromPayments);
  es::Reactor reactor(*host.kafka, {prefix + "sessions.reactions", topics.commands, topics.deadletter},
                      {{prefix + "sessions.from-matching", prefix + "helpline.matching.events",
                        &from_matching},
                       {prefix + "sessions.from-payments", prefix + "helpline.payments.events",
                        &from_payments}});

  if (!server::StartAll({
           {"closed accounts", [&] { return host.closed_accounts.Start(); }},
           {"personal keys", [&] { return personal->Start(); }},
           {"read model", [&] { return events.Start(); }},
           {"processor", [&] { return host.processor.Start(); }},
           {"reactions", [&] { return reactor.Start(); }}})) {
    return 1;
  }
  absl::StatusOr<std::unique_ptr<es::CommandSender>> sender =
      es::CommandSender::Create(*host.kafka, {topics, ""});
  if (!sender.ok()) {
    log::Error("cannot start: command sender", {{"error", sender.status().ToString()}});
    return 1;
  }

  auth::IdentityCallGuard callers(
      config, host.wall_clock, config.GetDouble("sessions.requests_per_second_per_caller"),
      host.server);
  callers.guard().RefuseClosedAccounts(
      [&](const std::string& user_id) { return host.closed_accounts.IsClosed(user_id); });

  SessionsOptions options;
  options.room_tokens.api_key = config.GetString("sessions.livekit_api_key");
  options.room_tokens.api_secret = config.GetString("sessions.livekit_api_secret");
  options.room_tokens.ttl = config.GetDuration("sessions.room_token_ttl");

  // LiveKit's rooms: created on join, closed when sessions are over, and
  // (with connections from the media server) its webhooks and listings.
  std::unique_ptr<LiveKitRoomService> rooms;
  std::unique_ptr<RoomKeeper> keeper;
  std::unique_ptr<WebhookReceiver> webhooks;
  std::unique_ptr<server::HttpEndpoint> webhook_endpoint;
  es::Front front(**sender, events, options.command_timeout);
  LiveRoomsParts live{front, read_model, host.clock, host.server.metrics().registry()};
  if (!livekit_api_url.empty()) {
    LiveKitRoomServiceOptions room_options;
    room_options.api_url = livekit_api_url;
    room_options.keys = options.room_tokens;
    rooms = std::make_unique<LiveKitRoomService>(room_options);
    RoomKeeperOptions keeper_options;
    keeper_options.sync_interval = config.GetDuration("sessions.room_sync_interval");
    keeper = std::make_unique<RoomKeeper>(keeper_options, *rooms, live);
  }
  if (!webhook_listen.empty()) {
    webhooks = std::make_unique<WebhookReceiver>(options.room_tokens, live);
    webhook_endpoint = std::make_unique<server::HttpEndpoint>(
        "/livekit/webhook",
        [&](const server::HttpRequest& request) { return webhooks->Handle(request); }, 64 << 10,
        [&](const server::HttpRequest& request) { return webhooks->CheckHeaders(request); });
    if (absl::Status serving = webhook_endpoint->Serve(webhook_listen); !serving.ok()) {
      log::Error("cannot start: webhook endpoint", {{"error", serving.ToString()}});
      return 1;
    }
    host.server.AddPort("webhook", webhook_endpoint->port());
    log::Info("receiving LiveKit's webhooks", {{"port", webhook_endpoint->port()}});
  }
  options.livekit_url = config.GetString("sessions.livekit_url");
  options.review_window = config.GetDuration("sessions.review_window");
  options.refund_window = config.GetDuration("sessions.refund_window");
  SessionsService service(options,
                          SessionsParts{front, read_model, callers.guard(), host.clock,
                                        host.wall_clock, *personal, rooms.get()});
  host.server.AddService(&service);
  if (absl::Status started = host.server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    return 1;
  }
  host.server.ServeWhen([&] {
    return host.processor.InService() && events.CaughtUp() && host.closed_accounts.CaughtUp() &&
           personal->CaughtUp();
  });
  if (keeper) {
    while (!events.CaughtUp() && !shutdown.WaitFor(absl::Milliseconds(100))) {
    }
    keeper->Start();
  }

  shutdown.Wait();
  log::Info("stopping");
  if (webhook_endpoint) webhook_endpoint->Stop();
  if (keeper) keeper->Stop();
  host.server.Shutdown();
  reactor.Stop();
  host.processor.Stop();
  events.Stop();
  personal->Stop();
  sender->reset();
  return 0;
}

}  // namespace
}  // namespace helpline::sessions

int main(int argc, char** argv) { return helpline::sessions::Main(argc, argv); }
