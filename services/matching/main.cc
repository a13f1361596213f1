// helpline-matching: presence of experts, help requests matched through
// offers (the dispatcher), booked slots.
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/identity/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/matching/dispatcher.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/reactions.h"
#include "services/matching/domain/read_model.h"
#include "services/matching/matching_service.h"
#include "services/matching/presence.h"
#include "services/matching/presence_sweep.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/privacy/personal_text.h"
#include "services/runtime/redis/redis_client.h"
#include "services/runtime/server/watch_hub.h"

namespace helpline::matching {
namespace {

constexpr char kService[] = "matching";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  es::AddServiceKeys(schema);
  es::AddCurrencyKey(schema);
  redis::AddRedisKeys(schema);
  privacy::AddPersonalTextKeys(schema);
  auth::AddIdentityTargetKey(schema);
  schema.String("matching.presence_key_prefix", "helpline:presence:",
              "prepended to every Redis key of presence")
      .Int("matching.redis_connections", 4, 1, 64,
           "connections to Redis (each carries one call at a time)")
      .Duration("matching.presence_ttl", absl::Seconds(30), absl::Seconds(1), absl::Minutes(10),
                "an expert without a heartbeat for this long is offline")
      .Duration("matching.heartbeat_interval", absl::Seconds(10), absl::Milliseconds(100),
                absl::Minutes(5), "how often expert apps are told to send a heartbeat")
      .Duration("matching.presence_sweep_interval", absl::Seconds(5), absl::Milliseconds(50),
                absl::Minutes(5), "how often expired heartbeats are looked for")
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

MatchingOptions OptionsFrom(const server::Config& config) {
  MatchingOptions options;
  options.currency = es::CurrencyOrExit(config);
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
  return options;
}

int Main(int argc, char** argv) {
  es::ServiceHost host(kService, Schema(), argc, argv, MatchingType());
  const server::Config& config = host.config;

  RankingOptions ranking;
  ranking.rating_prior_mean = config.GetDouble("matching.rating_prior_mean");
  ranking.rating_prior_weight = config.GetDouble("matching.rating_prior_weight");
  ranking.fairness_window = config.GetDuration("matching.fairness_window");
  MatchingReadModel read_model(ranking, config.GetDuration("matching.closed_request_retention"));
  server::WatchHub watches;
  read_model.OnChange([&watches](const std::vector<std::string>& keys) { watches.Changed(keys); });
  // Streams end at once (UNAVAILABLE) when stopping: clients reconnect to another replica.
  host.OnStopping([&watches] { watches.Close(); });
  // Descriptions and notes stay sealed in the read model, opened per answer;
  // the feed reads their keys first, so an answer does not wait for one.
  privacy::PersonalText& personal = host.PersonalTexts();
  es::EventFeed& events =
      host.OwnEvents<v1::MatchingEvent>(read_model, [&](google::protobuf::Message& event) {
        return personal.ReadKeysOf(event, absl::Now() + absl::Seconds(5));
      });
  host.EventsOf<catalog::v1::CatalogEvent>("catalog", read_model.catalog_projection());
  host.EventsOf<sessions::v1::SessionsEvent>("sessions", read_model.sessions_projection());

  // A booking whose payment hold failed gives its slot back.
  es::TypedReaction<sessions::v1::SessionsEvent, v1::MatchingCommand> from_sessions(
      MatchingFromSessions);
  // An account deleted in identity: its requests and bookings still to come end.
  es::TypedReaction<identity::v1::IdentityEvent, v1::MatchingCommand> from_identity(
      [&](const identity::v1::IdentityEvent& event) {
        // A request or booking made just before the deletion ends too.
        if (event.has_account_deleted()) {
          es::AwaitCurrent(events, [&] { return host.shutdown.WaitFor(absl::ZeroDuration()); },
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
  host.React({{"from-sessions", "sessions", &from_sessions},
              {"from-identity", "identity", &from_identity}});

  // Presence in Redis; with Redis down help now says UNAVAILABLE, the rest works.
  redis::CallMetrics redis_metrics(host.server.metrics().registry());
  redis::ClientOptions redis_options = redis::ClientOptionsFromConfig(config);
  redis_options.metrics = &redis_metrics;
  redis::ClientPool redis(redis_options, static_cast<int>(config.GetInt("matching.redis_connections")));
  MatchingMetrics metrics(host.server.metrics().registry(), host.clock.rate());
  PresenceStore presence(redis, config.GetString("matching.presence_key_prefix"),
                         config.GetDuration("matching.presence_ttl"));
  MatchingService service(
      OptionsFrom(config),
      MatchingParts{presence, host.front(), read_model, watches,
                    host.Callers(config.GetDouble("matching.requests_per_second_per_caller")),
                    host.clock, host.closed_accounts, personal, &metrics});

  DispatcherOptions dispatch;
  dispatch.offer_window = config.GetDuration("matching.offer_window");
  dispatch.match_hold = config.GetDuration("matching.match_hold");
  dispatch.clock_rate = host.clock.rate();
  Dispatcher dispatcher(dispatch, read_model, presence, host.front(), host.clock, &metrics);
  host.AddLoop("dispatcher", dispatcher);
  PresenceSweep sweep(presence, host.front(), config.GetDuration("matching.presence_sweep_interval"));
  host.AddLoop("presence sweep", sweep);
  return host.Run({&service});
}

}  // namespace
}  // namespace helpline::matching

int main(int argc, char** argv) { return helpline::matching::Main(argc, argv); }
