// helpline-catalog: expert profiles and their review, the category tree,
// sponsor programs and search.
#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "services/catalog/catalog_service.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/presence_projection.h"
#include "services/catalog/domain/reactions.h"
#include "services/catalog/domain/read_model.h"
#include "services/catalog/domain/review_projection.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/privacy/personal_text.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/server.h"

namespace helpline::catalog {
namespace {

constexpr char kService[] = "catalog";

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
      .String("catalog.currency", "EUR",
              "the deployment's ISO 4217 currency: every price is in it")
      .Double("catalog.rating_prior_mean", 4.0, 1, 5,
              "ratings are pulled towards this many stars ...")
      .Double("catalog.rating_prior_weight", 5, 0, 1000,
              "... as if this many reviews of that many stars came first")
      .Bool("catalog.seed_categories", true,
            "create the default category tree at start when there is none")
      .Double("catalog.requests_per_second_per_caller", 50, 0.1, 1e6,
              "calls a user makes per second (burst: 5 times that)");
  return schema;
}

int Main(int argc, char** argv) {
  server::ShutdownSignal shutdown;
  server::Config config = server::LoadConfigOrExit(Schema(), argc, argv);
  server::InitLogging(kService, config);
  log::Info("starting", {{"config", config.Describe()}});

  const std::string currency = config.GetString("catalog.currency");
  if (currency.size() != 3 || !std::all_of(currency.begin(), currency.end(),
                                           [](char c) { return c >= 'A' && c <= 'Z'; })) {
    log::Error("bad config: catalog.currency must be an ISO 4217 code such as EUR");
    return 2;
  }
  es::ServiceHost host(kService, config, CatalogType());
  const std::string& prefix = host.prefix;
  const es::ServiceTopics& topics = host.topics;


  CatalogReadModel read_model(RatingOptions{config.GetDouble("catalog.rating_prior_mean"),
                                            config.GetDouble("catalog.rating_prior_weight")});
  // Search indexes the experts' own words: the read model gets them opened.
  std::unique_ptr<privacy::PersonalText> personal = privacy::PersonalText::FromConfigOrExit(
      *host.kafka, config, {topics.keys, topics.deadletter, "catalog.personal-keys"},
      [&](const std::string& user_id) { return host.closed_accounts.IsClosed(user_id); });
  es::EventFeed events(*host.kafka,
                       {topics.events, topics.deadletter, "catalog.read-model",
                        [&](google::protobuf::Message& event) {
                          return personal->OpenAll(event, absl::Now() + absl::Seconds(5),
                                                   privacy::PersonalText::Unopenable::kEmpty);
                        }},
                       [] { return std::make_unique<v1::CatalogEvent>(); }, read_model);
  // "Available now": matching's presence events.
  PresenceProjection presence_projection(read_model);
  es::EventFeed presence(*host.kafka,
                         {prefix + "helpline.matching.events", topics.deadletter, "catalog.presence"},
                         [] { return std::make_unique<matching::v1::MatchingEvent>(); },
                         presence_projection);

  // Ratings: sessions' reviews.
  ReviewProjection review_projection(read_model);
  es::EventFeed reviews(*host.kafka,
                        {prefix + "helpline.sessions.events", topics.deadletter, "catalog.reviews"},
                        [] { return std::make_unique<sessions::v1::SessionsEvent>(); },
                        review_projection);

  // An account deleted in identity: its profile erased, its programs closed.
  es::TypedReaction<identity::v1::IdentityEvent, v1::CatalogCommand> from_identity(
      [&](const identity::v1::IdentityEvent& event) {
        return CatalogFromIdentity(event, [&](const std::string& user_id) {
          // A program created just before the account's deletion is closed too.
          es::AwaitCurrent(events, [&] { return shutdown.WaitFor(absl::ZeroDuration()); },
                           "catalog");
          return read_model.ProgramIdsOf(user_id);
        });
      },
      es::ReactionIds::kByContent);
  es::Reactor reactor(*host.kafka, {prefix + "catalog.reactions", topics.commands, topics.deadletter},
                      {{prefix + "catalog.from-identity", prefix + "helpline.identity.events",
                        &from_identity}});

  auth::IdentityCallGuard callers(
      config, host.wall_clock, config.GetDouble("catalog.requests_per_second_per_caller"),
      host.server);
  callers.guard().RefuseClosedAccounts(
      [&](const std::string& user_id) { return host.closed_accounts.IsClosed(user_id); });

  if (!server::StartAll({
           {"closed accounts", [&] { return host.closed_accounts.Start(); }},
           {"personal keys", [&] { return personal->Start(); }},
           {"read model", [&] { return events.Start(); }},
           {"presence feed", [&] { return presence.Start(); }},
           {"reviews feed", [&] { return reviews.Start(); }},
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

  CatalogOptions options;
  options.currency = currency;
  es::Front front(**sender, events, options.command_timeout);
  CatalogService service(options, CatalogParts{front, read_model, callers.guard(), host.clock,
                                               *personal, host.closed_accounts});
  host.server.AddService(&service);
  if (absl::Status started = host.server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    return 1;
  }
  // Serving once the read model has caught up and the category tree exists.
  auto caught_up = [&] {
    return host.processor.InService() && events.CaughtUp() && presence.CaughtUp() &&
           reviews.CaughtUp() && host.closed_accounts.CaughtUp() && personal->CaughtUp();
  };
  std::atomic<bool> seeded{!config.GetBool("catalog.seed_categories")};
  host.server.ServeWhen([&] { return caught_up() && seeded.load(); });
  std::thread seed([&] {
    while (!seeded.load() && !shutdown.WaitFor(absl::Milliseconds(50))) {
      if (!caught_up()) continue;
      if (absl::Status done = service.SeedCategories(); done.ok()) {
        seeded.store(true);
      } else {
        log::Warn("could not seed the default categories; trying again",
                  {{"error", done.ToString()}});
        shutdown.WaitFor(absl::Seconds(1));
      }
    }
  });

  shutdown.Wait();
  log::Info("stopping");
  host.server.Shutdown();
  seed.join();
  reactor.Stop();
  host.processor.Stop();
  events.Stop();
  presence.Stop();
  reviews.Stop();
  personal->Stop();
  sender->reset();
  return 0;
}

}  // namespace
}  // namespace helpline::catalog

int main(int argc, char** argv) { return helpline::catalog::Main(argc, argv); }
