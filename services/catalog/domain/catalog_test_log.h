#pragma once

#include <string>
#include <vector>

#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/read_model.h"
#include "services/runtime/eventsourcing/testing/domain_test_log.h"

// For catalog's unit tests: a valid profile, and the processor in memory.
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

// The processor in memory (es::testing::DomainTestLog): a command sent
// without an actor comes from Helpline itself.
using CatalogTestLog = es::testing::DomainTestLog<CatalogDomain>;

}  // namespace helpline::catalog::testing
