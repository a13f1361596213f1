// helpline-matching: presence of experts, help requests matched through
// offers (the dispatcher), booked slots.
#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "services/matching/dispatcher.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/reactions.h"
#include "services/matching/domain/read_model.h"
#include "services/matching/matching_service.h"
#include "services/matching/presence.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/privacy/personal_text.h"
#include "services/runtime/redis/redis_client.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/server.h"

namespace helpline::matching {
namespace {

constexpr char kService[] = "matching";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  server::AddServerKeys(schema);
  kafka::AddKafkaKeys(schema);
  es::AddProcessorKeys(schema);
  redis::AddRedisKeys(schema);
  AddClockKeys(schema);
  auth::AddAuthKeys(schema);
  privacy::AddPersonalTextKeys(schema);
  auth::AddIdentityTargetKey(schema);
  schema.String("topics.prefix", "", "prepended to every topic and group name (tests)")
      .String("matching.presence_key_prefix", "helpline:presence:",
              "prepended to every Redis key of presence")
      .Int("matching.redis_connections", 4, 1, 64,
           "connections to Redis (each carries one call at a time)")
      .Duration("matching.presence_ttl", absl::Seconds(30), absl::Seconds(1), absl::Minutes(10),
                "an expert without a heartbeat for this long is offline")
      .Duration("matching.heartbeat_interval", absl::Seconds(10), absl::Milliseconds(100),
                absl::Minutes(5), "how often expert apps are told to send a heartbeat")
      .Duration("matching.presence_sweep_interval", absl::Seconds(5), absl::Milliseconds(50),
                absl::Minutes(5), "how often expired heartbeats are looked for")
      .String("matching.currency", "EUR", "the deployment's currency: budgets must be in it")
      .Int("matching.open_requests_per_person", 3, 1, 100,
           "open help requests a person may have at once")
      .Duration("matching.offer_window", absl::Seconds(30), absl::Seconds(1), absl::Minutes(10),
                "how long an expert has to answer an offer")
      .Duration("matching.request_wait_limit", absl::Minutes(10), absl::Seconds(10),
                absl::Hours(24), "a help request nobody accepted expires after this")
      .Duration("matching.match_hold", absl::Minutes(2), absl::Seconds(1), absl::Hours(1),
                "a matched expert gets no offers for this long (until the app says busy)")
      .Duration("matching.booking_minimum_notice", absl::Hours(2), absl::ZeroDuration(),
                absl::Hours(24 * 14), "how far ahead a booked slot must start")
      .Int("matching.watch_streams_per_caller", 5, 1, 100000,
           "WatchRequest and WatchOffers streams one account may have open on a server")
      .Int("matching.watch_streams", 20000, 1, 1000000,
           "watch streams a server holds open at once (they hold no thread; each costs a "
           "connection's share of memory)")
      .Int("matching.open_bookings_per_person_per_expert", 3, 1, 100,
           "bookings one person may hold with one expert that have not ended yet")
      .Duration("matching.booking_horizon", absl::Hours(24 * 90), absl::Hours(1),
                absl::Hours(24 * 730), "how far ahead a slot may be booked")
      .Duration("matching.free_cancellation_before", absl::Hours(12), absl::ZeroDuration(),
                absl::Hours(24 * 14), "a person's cancellation later than this before the start is late")
      .Duration("matching.closed_request_retention", absl::Hours(24 * 7), absl::Minutes(1),
                absl::Hours(24 * 365), "how long an ended help request stays readable")
      .Double("matching.rating_prior_mean", 4.0, 1, 5, "ratings are pulled towards this")
      .Double("matching.rating_prior_weight", 5, 0, 1000, "as if this many reviews came first")
      .Duration("matching.fairness_window", absl::Hours(1), absl::Minutes(1), absl::Hours(24 * 7),
                "offers in this window lower an expert's fairness term")
      .Double("matching.requests_per_second_per_caller", 20, 0.1, 1e6,
              "calls a user makes per second (burst: 5 times that)");
  return schema;
}

// Turns expired heartbeats into offline transitions until `shutdown`.
void SweepUntil(server::ShutdownSignal& shutdown, PresenceStore& presence,
                es::Front& front, absl::Duration interval) {
  while (!shutdown.WaitFor(interval)) {
    absl::StatusOr<std::vector<PresenceStore::Change>> gone = presence.Sweep(absl::Now(), 1000);
    if (!gone.ok()) {
      log::Warn("presence sweep failed", {{"error", gone.status().ToString()}});
      continue;
    }
    for (const PresenceStore::Change& change : *gone) {
      v1::MatchingCommand offline;
      offline.mutable_mark_offline()->set_sequence(change.sequence);
      absl::Status sent =
          SendPresenceCommand(front, offline, change.expert_id, change.sequence);
      if (!sent.ok()) {
        log::Warn("offline not recorded; the next sweep tries again",
                  {{"expert_id", change.expert_id}, {"error", sent.ToString()}});
        presence.Requeue(change.expert_id, absl::Now()).IgnoreError();
      }
    }
  }
}

int Main(int argc, char** argv) {
  server::ShutdownSignal shutdown;
  server::Config config = server::LoadConfigOrExit(Schema(), argc, argv);
  server::InitLogging(kService, config);
  log::Info("starting", {{"config", config.Describe()}});

  es::ServiceHost host(kService, config, MatchingType());
  const std::string& prefix = host.prefix;
  const es::ServiceTopics& topics = host.topics;


  RankingOptions ranking;
  ranking.rating_prior_mean = config.GetDouble("matching.rating_prior_mean");
  ranking.rating_prior_weight = config.GetDouble("matching.rating_prior_weight");
  ranking.fairness_window = config.GetDuration("matching.fairness_window");
  MatchingReadModel read_model(ranking, config.GetDuration("matching.closed_request_retention"));
  server::WatchHub watches;
  read_model.OnChange([&watches](const std::vector<std::string>& keys) { watches.Changed(keys); });
  // Descriptions and notes stay sealed in the read model, opened per answer;
  // the feed reads their keys first, so an answer does not wait for one.
  std::unique_ptr<privacy::PersonalText> personal = privacy::PersonalText::FromConfigOrExit(
      *host.kafka, config, {topics.keys, topics.deadletter, "matching.personal-keys"},
      [&](const std::string& user_id) { return host.closed_accounts.IsClosed(user_id); });
  es::EventFeed events(*host.kafka,
                       {topics.events, topics.deadletter, "matching.read-model",
                        [&](google::protobuf::Message& event) {
                          return personal->ReadKeysOf(event, absl::Now() + absl::Seconds(5));
                        }},
                       [] { return std::make_unique<v1::MatchingEvent>(); }, read_model);
  es::EventFeed catalog(*host.kafka,
                        {prefix + "helpline.catalog.events", topics.deadletter, "matching.catalog"},
                        [] { return std::make_unique<catalog::v1::CatalogEvent>(); },
                        read_model.catalog_projection());
  es::EventFeed session_feed(
      *host.kafka, {prefix + "helpline.sessions.events", topics.deadletter, "matching.sessions"},
      [] { return std::make_unique<sessions::v1::SessionsEvent>(); },
      read_model.sessions_projection());
  // A booking whose payment hold failed gives its slot back.
  es::TypedReaction<sessions::v1::SessionsEvent, v1::MatchingCommand> from_sessions(
      MatchingFromSessions);
  // An account deleted in identity: its requests and bookings still to come end.
  es::TypedReaction<identity::v1::IdentityEvent, v1::MatchingCommand> from_identity(
      [&](const identity::v1::IdentityEvent& event) {
        // A request or booking made just before the deletion ends too.
        if (event.has_account_deleted()) {
          es::AwaitCurrent(events, [&] { return shutdown.WaitFor(absl::ZeroDuration()); },
                           "matching");
        }
        return MatchingFromIdentity(
            event, {[&](const std::string& person_id) {
                      return read_model.OpenRequestIdsOf(person_id);
                    },
                    [&](const std::string& user_id) {
                      // A session joined early is left to end as it will.
                      std::vector<v1::Booking> bookings =
                          read_model.BookingsOf(user_id, host.clock.Now(), /*all=*/false);
                      std::erase_if(bookings, [&](const v1::Booking& booking) {
                        return read_model.SessionUnderWay(booking.booking_id());
                      });
                      return bookings;
                    }});
      },
      es::ReactionIds::kByContent);
  es::Reactor reactor(*host.kafka, {prefix + "matching.reactions", topics.commands, topics.deadletter},
                      {{prefix + "matching.from-sessions", prefix + "helpline.sessions.events",
                        &from_sessions},
                       {prefix + "matching.from-identity", prefix + "helpline.identity.events",
                        &from_identity}});
  if (!server::StartAll({
           {"closed accounts", [&] { return host.closed_accounts.Start(); }},
           {"personal keys", [&] { return personal->Start(); }},
           {"read model", [&] { return events.Start(); }},
           {"catalog feed", [&] { return catalog.Start(); }},
           {"sessions feed", [&] { return session_feed.Start(); }},
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

  redis::ClientPool redis(redis::ClientOptionsFromConfig(config),
                          static_cast<int>(config.GetInt("matching.redis_connections")));
  PresenceStore presence(redis, config.GetString("matching.presence_key_prefix"),
                         config.GetDuration("matching.presence_ttl"));

  auth::IdentityCallGuard callers(
      config, host.wall_clock, config.GetDouble("matching.requests_per_second_per_caller"),
      host.server);
  callers.guard().RefuseClosedAccounts(
      [&](const std::string& user_id) { return host.closed_accounts.IsClosed(user_id); });

  MatchingOptions options;
  options.currency = config.GetString("matching.currency");
  options.heartbeat_interval = config.GetDuration("matching.heartbeat_interval");
  options.request_wait_limit = config.GetDuration("matching.request_wait_limit");
  options.open_requests_per_person =
      static_cast<int>(config.GetInt("matching.open_requests_per_person"));
  options.booking_minimum_notice = config.GetDuration("matching.booking_minimum_notice");
  options.open_bookings_per_person_per_expert =
      static_cast<int>(config.GetInt("matching.open_bookings_per_person_per_expert"));
  options.booking_horizon = config.GetDuration("matching.booking_horizon");
  options.watch_streams_per_caller =
      static_cast<int>(config.GetInt("matching.watch_streams_per_caller"));
  options.watch_streams = static_cast<int>(config.GetInt("matching.watch_streams"));
  options.free_cancellation_before = config.GetDuration("matching.free_cancellation_before");
  es::Front front(**sender, events, options.command_timeout);
  MatchingService service(
      options, MatchingParts{presence, front, read_model, watches, callers.guard(), host.clock,
                             host.closed_accounts, *personal});
  host.server.AddService(&service);
  if (absl::Status started = host.server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    return 1;
  }
  // Serving with Redis down too: help now says UNAVAILABLE, the rest works.
  host.server.ServeWhen([&] {
    return host.processor.InService() && events.CaughtUp() && catalog.CaughtUp() &&
           session_feed.CaughtUp() && host.closed_accounts.CaughtUp() && personal->CaughtUp();
  });
  DispatcherOptions dispatch;
  dispatch.offer_window = config.GetDuration("matching.offer_window");
  dispatch.match_hold = config.GetDuration("matching.match_hold");
  dispatch.clock_rate = host.clock.rate();
  Dispatcher dispatcher(dispatch, read_model, presence, front, host.clock);
  std::thread dispatching([&] {
    while (!shutdown.WaitFor(absl::Milliseconds(50))) {
      if (events.CaughtUp() && catalog.CaughtUp()) break;
    }
    dispatcher.Run([&](absl::Duration wait) { return shutdown.WaitFor(wait); });
  });
  std::thread sweeper([&] {
    SweepUntil(shutdown, presence, front, config.GetDuration("matching.presence_sweep_interval"));
  });

  shutdown.Wait();
  log::Info("stopping");
  watches.Close();  // streams end at once (UNAVAILABLE): clients reconnect to another replica
  host.server.Shutdown();
  sweeper.join();
  dispatching.join();
  reactor.Stop();
  host.processor.Stop();
  events.Stop();
  catalog.Stop();
  session_feed.Stop();
  personal->Stop();
  sender->reset();
  return 0;
}

}  // namespace
}  // namespace helpline::matching

int main(int argc, char** argv) { return helpline::matching::Main(argc, argv); }
