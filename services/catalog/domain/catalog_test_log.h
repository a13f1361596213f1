#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/read_model.h"
#include "services/runtime/core/proto_time.h"

// For catalog's unit tests: what the processor does with a command (decide,
// stamp the events' meta, apply), in memory, feeding a read model.
namespace helpline::catalog::testing {

// A profile that passes every rule: per-minute price in EUR, Monday mornings
// in Berlin.
inline v1::ProfileContent ValidContent(const std::string& headline = "I fix bikes",
                                       const std::string& category = "bike-repair",
                                       int64_t rate_minor = 150) {
  v1::ProfileContent content;
  content.set_public_name("Ben");
  content.set_headline(headline);
  content.set_bio("Twenty years in a bike shop.\nAsk me anything about gears.");
  content.add_skills("gears");
  content.add_skills("tyres");
  content.add_category_ids(category);
  content.add_languages("de");
  content.add_languages("en-GB");
  v1::PerMinutePrice& price = *content.mutable_price()->mutable_per_minute();
  price.mutable_rate()->set_currency_code("EUR");
  price.mutable_rate()->set_amount_minor(rate_minor);
  price.set_minimum_minutes(5);
  v1::Availability& availability = *content.mutable_availability();
  availability.set_time_zone("Europe/Berlin");
  v1::WeeklyWindow& monday = *availability.add_weekly();
  monday.set_weekday(v1::WEEKDAY_MONDAY);
  monday.mutable_time()->set_start_minute(9 * 60);
  monday.mutable_time()->set_end_minute(12 * 60);
  return content;
}

class CatalogTestLog {
 public:
  explicit CatalogTestLog(CatalogReadModel* read_model = nullptr) : read_model_(read_model) {}

  absl::StatusOr<std::vector<v1::CatalogEvent>> Send(const std::string& aggregate_id,
                                                     v1::CatalogCommand command) {
    v1::CatalogState& state = states_[aggregate_id];
    int64_t& version = versions_[aggregate_id];
    command.mutable_meta()->set_aggregate_id(aggregate_id);
    es::DecideContext context{now, aggregate_id, version, &command.meta()};
    absl::StatusOr<std::vector<v1::CatalogEvent>> events =
        CatalogDomain::Decide(state, command, context);
    if (!events.ok()) return events;
    for (v1::CatalogEvent& event : *events) {
      runtime::v1::EventMeta& meta = *event.mutable_meta();
      meta.set_aggregate_id(aggregate_id);
      meta.set_aggregate_version(++version);
      *meta.mutable_occurred_at() = ToProtoTime(now);
      CatalogDomain::Apply(state, event);
      if (read_model_ != nullptr) read_model_->Apply(event);
    }
    return events;
  }

  const v1::CatalogState& State(const std::string& aggregate_id) { return states_[aggregate_id]; }
  int64_t Version(const std::string& aggregate_id) { return versions_[aggregate_id]; }

  absl::Time now = absl::FromUnixSeconds(1'790'000'000);

 private:
  CatalogReadModel* read_model_;
  std::map<std::string, v1::CatalogState> states_;
  std::map<std::string, int64_t> versions_;
};

}  // namespace helpline::catalog::testing
