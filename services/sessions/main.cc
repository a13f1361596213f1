// helpline-sessions: the live call's lifecycle - sessions created from
// matching's matches and bookings, joins with room tokens, metering of the
// time both are connected, reviews and refund requests.
#include <curl/curl.h>

#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/privacy/personal_text.h"
#include "prometheus/gauge.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/loop.h"
#include "services/sessions/domain/reactions.h"
#include "services/sessions/domain/read_model.h"
#include "services/sessions/domain/sessions_domain.h"
#include "services/sessions/live_rooms.h"
#include "services/sessions/sessions_service.h"

namespace helpline::sessions {
namespace {

constexpr char kService[] = "sessions";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  es::AddServiceKeys(schema);
  privacy::AddPersonalTextKeys(schema);
  auth::AddIdentityTargetKey(schema);
  schema.String("sessions.livekit_url", "ws://127.0.0.1:7880", "the LiveKit server frontends join")
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

// Bad settings of LiveKit's edge; empty if none.
std::string MediaConfigProblem(const server::Config& config) {
  if (config.GetString("sessions.livekit_api_secret").empty()) {
    return "sessions.livekit_api_secret is required (from a Secret)";
  }
  if (config.GetString("sessions.connections_from") == "media_server" &&
      (config.GetString("sessions.livekit_api_url").empty() ||
       config.GetString("sessions.webhook_listen").empty())) {
    return "sessions.connections_from media_server needs sessions.livekit_api_url and "
           "sessions.webhook_listen";
  }
  return "";
}

int Main(int argc, char** argv) {
  es::ServiceHost host(kService, Schema(), argc, argv, SessionsType());
  const server::Config& config = host.config;
  if (std::string problem = MediaConfigProblem(config); !problem.empty()) {
    log::Error(absl::StrCat("bad config: ", problem));
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);

  // Reviews and refund reasons stay sealed in the read model, opened per
  // answer; the feed reads their keys first, so an answer does not wait.
  privacy::PersonalText& personal = host.PersonalTexts();
  SessionsReadModel read_model;
  host.OwnEvents<v1::SessionsEvent>(read_model, [&](google::protobuf::Message& event) {
    return personal.ReadKeysOf(event, absl::Now() + absl::Seconds(5));
  });

  SessionWindows windows;
  windows.help_now_join_window = config.GetDuration("sessions.help_now_join_window");
  windows.booked_join_window = config.GetDuration("sessions.booked_join_window");
  windows.grace_period = config.GetDuration("sessions.grace_period");
  windows.connection_source = config.GetString("sessions.connections_from") == "media_server"
                                  ? v1::CONNECTION_SOURCE_MEDIA_SERVER
                                  : v1::CONNECTION_SOURCE_APPS;
  es::TypedReaction<matching::v1::MatchingEvent, v1::SessionsCommand> from_matching(
      [windows](const matching::v1::MatchingEvent& event) {
        return SessionsFromMatching(event, windows);
      });
  // A hold the card or the sponsor's budget refused cancels the session.
  es::TypedReaction<payments::v1::PaymentsEvent, v1::SessionsCommand> from_payments(
      SessionsFromPayments);
  host.React({{"from-matching", "matching", &from_matching},
              {"from-payments", "payments", &from_payments}});

  SessionsOptions options;
  options.room_tokens.api_key = config.GetString("sessions.livekit_api_key");
  options.room_tokens.api_secret = config.GetString("sessions.livekit_api_secret");
  options.room_tokens.ttl = config.GetDuration("sessions.room_token_ttl");
  options.livekit_url = config.GetString("sessions.livekit_url");
  options.review_window = config.GetDuration("sessions.review_window");
  options.refund_window = config.GetDuration("sessions.refund_window");
  LiveMedia media(config, options.room_tokens,
                  {host.front(), read_model, host.clock, host.server.metrics().registry()});
  media.AddTo(host);

  // helpline_sessions_open{status}: "live" is the calls under way.
  prometheus::Family<prometheus::Gauge>& open_sessions =
      prometheus::BuildGauge()
          .Name("helpline_sessions_open")
          .Help("Sessions not over yet, by status (created, waiting, live, reconnecting)")
          .Register(host.server.metrics().registry());
  server::Loop counting("open sessions", absl::Seconds(1), [&] {
    std::map<v1::SessionStatus, int64_t> open = read_model.OpenByStatus();
    for (auto [status, name] : {std::pair{v1::SESSION_STATUS_CREATED, "created"},
                                {v1::SESSION_STATUS_WAITING, "waiting"},
                                {v1::SESSION_STATUS_LIVE, "live"},
                                {v1::SESSION_STATUS_RECONNECTING, "reconnecting"}}) {
      open_sessions.Add({{"status", name}}).Set(static_cast<double>(open[status]));
    }
  });
  host.AddLoop("open sessions", counting);

  SessionsService service(
      options, SessionsParts{host.front(), read_model,
                             host.Callers(config.GetDouble("sessions.requests_per_second_per_caller")),
                             host.clock, host.wall_clock, personal, media.rooms()});
  return host.Run({&service});
}

}  // namespace
}  // namespace helpline::sessions

int main(int argc, char** argv) { return helpline::sessions::Main(argc, argv); }
