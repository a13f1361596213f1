#pragma once

#include <string>
#include <vector>

#include "services/catalog/domain/catalog_test_log.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/read_model.h"
#include "services/runtime/core/proto_time.h"

// For matching's unit tests: money, prices, a read model fed with catalog
// facts and presence the way the feeds do, and a help request to open.
namespace helpline::matching::testing {

inline runtime::v1::Money Eur(int64_t minor) {
  runtime::v1::Money money;
  money.set_currency_code("EUR");
  money.set_amount_minor(minor);
  return money;
}

inline catalog::v1::PriceTerms PerMinute(int64_t rate, int minimum = 5) {
  catalog::v1::PriceTerms price;
  *price.mutable_per_minute()->mutable_rate() = Eur(rate);
  price.mutable_per_minute()->set_minimum_minutes(minimum);
  return price;
}

inline catalog::v1::PriceTerms Fixed(int64_t amount, int minutes) {
  catalog::v1::PriceTerms price;
  *price.mutable_fixed()->mutable_price() = Eur(amount);
  price.mutable_fixed()->set_session_minutes(minutes);
  return price;
}

inline v1::Budget PerMinuteBudget(int64_t minor) {
  v1::Budget budget;
  *budget.mutable_max_per_minute() = Eur(minor);
  return budget;
}

// Feeds catalog facts and presence into a read model the way the feeds do.
class World {
 public:
  World() {
    Category("repair", "");
    Category("bike-repair", "repair");
    Category("car-repair", "repair");
    Category("cooking", "");
  }

  void Category(const std::string& id, const std::string& parent) {
    catalog::v1::CatalogEvent event;
    event.mutable_meta()->set_aggregate_id(catalog::kCategoryTreeId);
    event.mutable_category_created()->set_category_id(id);
    event.mutable_category_created()->set_name(id);
    event.mutable_category_created()->set_parent_id(parent);
    Catalog(event);
  }

  void Expert(const std::string& id, const std::string& category,
              const catalog::v1::PriceTerms& price, const std::string& language = "de-AT",
              bool published = true) {
    catalog::v1::ProfileContent live = catalog::testing::ValidContent("Help", category);
    live.clear_languages();
    live.add_languages(language);
    *live.mutable_price() = price;
    catalog::v1::CatalogEvent approved;
    approved.mutable_meta()->set_aggregate_id(id);
    *approved.mutable_expert_approved()->mutable_live() = live;
    Catalog(approved);
    if (published) {
      catalog::v1::CatalogEvent publish;
      publish.mutable_meta()->set_aggregate_id(id);
      publish.mutable_profile_published();
      Catalog(publish);
    }
    Presence(id, v1::PRESENCE_STATUS_AVAILABLE);
  }

  void Presence(const std::string& id, v1::PresenceStatus status) {
    v1::MatchingEvent event;
    event.mutable_meta()->set_aggregate_id(PresenceId(id));
    if (status == v1::PRESENCE_STATUS_OFFLINE) {
      event.mutable_expert_went_offline()->set_expert_id(id);
    } else {
      event.mutable_expert_status_changed()->set_expert_id(id);
      event.mutable_expert_status_changed()->set_status(status);
    }
    model.Apply(event);
  }

  void Program(const std::string& id, std::vector<std::string> categories, absl::Time from) {
    catalog::v1::CatalogEvent event;
    event.mutable_meta()->set_aggregate_id(id);
    catalog::v1::SponsorProgramTerms& terms =
        *event.mutable_sponsor_program_created()->mutable_terms();
    terms.set_name("Free repairs");
    for (const std::string& category : categories) terms.add_category_ids(category);
    terms.set_free_sessions_per_person(1);
    terms.set_max_minutes_per_session(20);
    *terms.mutable_active_from() = ToProtoTime(from);
    Catalog(event);
  }

  void Catalog(const catalog::v1::CatalogEvent& event) {
    model.catalog_projection().Apply(event);
  }

  void Session(const sessions::v1::SessionsEvent& event) {
    model.sessions_projection().Apply(event);
  }

  void Review(const std::string& expert, int stars) {
    sessions::v1::SessionsEvent event;
    event.mutable_review_submitted()->set_expert_id(expert);
    event.mutable_review_submitted()->set_stars(stars);
    Session(event);
  }

  std::vector<std::string> Ranked(const CandidateQuery& query, absl::Time now) {
    std::vector<std::string> ids;
    for (const Candidate& candidate :
         model.WithPool([&](const CandidatePool& pool) { return pool.Rank(query, now, 10); })) {
      ids.push_back(candidate.expert_id);
    }
    return ids;
  }

  MatchingReadModel model;
};

// A help request of `person` in `category`, in German, up to 2.00 a minute
// for 30 minutes, waiting at most 10 minutes.
inline v1::MatchingCommand Open(const std::string& category = "bike-repair",
                         const std::string& person = "person-1") {
  v1::MatchingCommand command;
  v1::OpenHelpRequest& open = *command.mutable_open_help_request();
  open.set_person_id(person);
  open.set_category_id(category);
  open.set_language("de");
  open.set_description("My gears slip");
  *open.mutable_budget() = PerMinuteBudget(200);
  open.set_max_minutes(30);
  *open.mutable_wait_limit() = ToProtoDuration(absl::Minutes(10));
  return command;
}

}  // namespace helpline::matching::testing
