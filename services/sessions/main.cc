// helpline-sessions: the live call's lifecycle - sessions created from
// matching's matches and bookings, joins with room tokens, metering of the
// time both are connected, reviews and refund requests.
#include <memory>

#include "helpline/matching/v1/events.pb.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/server.h"
#include "services/payments/domain/reactions.h"
#include "services/sessions/domain/reactions.h"
#include "services/sessions/domain/read_model.h"
#include "services/sessions/domain/session_domain.h"
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
  auth::AddIdentityTargetKey(schema);
  schema.String("topics.prefix", "", "prepended to every topic and group name (tests)")
      .String("sessions.livekit_url", "ws://127.0.0.1:7880", "the LiveKit server frontends join")
      .String("sessions.livekit_api_key", "helpline", "the LiveKit API key (the tokens' issuer)")
      .Secret("sessions.livekit_api_secret", "the LiveKit API secret tokens are signed with")
      .Duration("sessions.room_token_ttl", absl::Minutes(10), absl::Minutes(1), absl::Hours(6),
                "how long a room token lets its holder in")
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

  es::ServiceHost host(kService, config, SessionsType());
  const std::string& prefix = host.prefix;
  const es::ServiceTopics& topics = host.topics;


  SessionsReadModel read_model;
  es::EventFeed events(*host.kafka, {topics.events, topics.deadletter, "sessions.read-model"},
                       [] { return std::make_unique<v1::SessionsEvent>(); }, read_model);

  SessionWindows windows;
  windows.help_now_join_window = config.GetDuration("sessions.help_now_join_window");
  windows.booked_join_window = config.GetDuration("sessions.booked_join_window");
  windows.grace_period = config.GetDuration("sessions.grace_period");
  es::TypedReaction<matching::v1::MatchingEvent, v1::SessionsCommand> from_matching(
      [windows](const matching::v1::MatchingEvent& event) {
        return SessionsFromMatching(event, windows);
      });

  // A hold the card or the sponsor's budget refused cancels the session.
  es::TypedReaction<payments::v1::PaymentsEvent, v1::SessionsCommand> from_payments(
      payments::SessionsFromPayments);
  es::Reactor reactor(*host.kafka, {prefix + "sessions.reactions", topics.commands, topics.deadletter},
                      {{prefix + "sessions.from-matching", prefix + "helpline.matching.events",
                        &from_matching},
                       {prefix + "sessions.from-payments", prefix + "helpline.payments.events",
                        &from_payments}});

  if (!server::StartAll({
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
      config, host.clock, config.GetDouble("sessions.requests_per_second_per_caller"),
      host.server);

  SessionsOptions options;
  options.room_tokens.api_key = config.GetString("sessions.livekit_api_key");
  options.room_tokens.api_secret = config.GetString("sessions.livekit_api_secret");
  options.room_tokens.ttl = config.GetDuration("sessions.room_token_ttl");
  options.livekit_url = config.GetString("sessions.livekit_url");
  options.review_window = config.GetDuration("sessions.review_window");
  options.refund_window = config.GetDuration("sessions.refund_window");
  SessionsService service(options,
                          SessionsParts{**sender, events, read_model, callers.guard(), host.clock});
  host.server.AddService(&service);
  if (absl::Status started = host.server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    return 1;
  }
  host.server.ServeWhen([&] { return host.processor.Ready() && events.CaughtUp(); });

  shutdown.Wait();
  log::Info("stopping");
  host.server.Shutdown();
  reactor.Stop();
  host.processor.Stop();
  events.Stop();
  sender->reset();
  return 0;
}

}  // namespace
}  // namespace helpline::sessions

int main(int argc, char** argv) { return helpline::sessions::Main(argc, argv); }
