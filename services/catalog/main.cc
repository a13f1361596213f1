// helpline-catalog: expert profiles and their review, the category tree,
// sponsor programs and search.
#include <string>

#include "absl/time/clock.h"
#include "helpline/identity/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/catalog/catalog_service.h"
#include "services/catalog/category_seeder.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/presence_projection.h"
#include "services/catalog/domain/reactions.h"
#include "services/catalog/domain/read_model.h"
#include "services/catalog/domain/review_projection.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/privacy/personal_text.h"
#include "services/runtime/server/log.h"

namespace helpline::catalog {
namespace {

constexpr char kService[] = "catalog";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  es::AddServiceKeys(schema);
  privacy::AddPersonalTextKeys(schema);
  auth::AddIdentityTargetKey(schema);
  es::AddCurrencyKey(schema);
  schema.Double("catalog.rating_prior_mean", 4.0, 1, 5,
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
  es::ServiceHost host(kService, Schema(), argc, argv, CatalogType());
  const server::Config& config = host.config;

  CatalogReadModel read_model(RatingOptions{config.GetDouble("catalog.rating_prior_mean"),
                                            config.GetDouble("catalog.rating_prior_weight")});
  // Search indexes the experts' own words: the read model gets them opened.
  privacy::PersonalText& personal = host.PersonalTexts();
  es::EventFeed& events =
      host.OwnEvents<v1::CatalogEvent>(read_model, [&](google::protobuf::Message& event) {
        return personal.OpenAll(event, absl::Now() + absl::Seconds(5),
                                privacy::PersonalText::Unopenable::kEmpty);
      });
  // "Available now" from matching's presence events; ratings from sessions' reviews.
  PresenceProjection presence(read_model);
  host.EventsOf<matching::v1::MatchingEvent>("matching", presence);
  ReviewProjection reviews(read_model);
  host.EventsOf<sessions::v1::SessionsEvent>("sessions", reviews);

  // An account deleted in identity: its profile erased, its programs closed.
  es::TypedReaction<identity::v1::IdentityEvent, v1::CatalogCommand> from_identity(
      [&](const identity::v1::IdentityEvent& event) {
        return CatalogFromIdentity(event, [&](const std::string& user_id) {
          // A program created just before the account's deletion is closed too.
          es::AwaitCurrent(events, [&] { return host.shutdown.WaitFor(absl::ZeroDuration()); },
                           "catalog");
          return read_model.ProgramIdsOf(user_id);
        });
      },
      es::ReactionIds::kByContent);
  host.React({{"from-identity", "identity", &from_identity}});

  CatalogOptions options;
  options.currency = es::CurrencyOrExit(config);
  CatalogService service(
      options, CatalogParts{host.front(), read_model,
                            host.Callers(config.GetDouble("catalog.requests_per_second_per_caller")),
                            host.clock, personal, host.closed_accounts});
  CategorySeeder seeder(service, config.GetBool("catalog.seed_categories"));
  host.AddLoop("category seeder", seeder);
  return host.Run({&service});
}

}  // namespace
}  // namespace helpline::catalog

int main(int argc, char** argv) { return helpline::catalog::Main(argc, argv); }
