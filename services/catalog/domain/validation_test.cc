#include "services/catalog/domain/validation.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/catalog/domain/catalog_test_log.h"

namespace helpline::catalog {
namespace {

using testing::ValidContent;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

ContentRules FrontRules() {
  ContentRules rules;
  rules.currency = "EUR";
  rules.active_category = [](const std::string& id) { return id == "bike-repair" || id == "cooking"; };
  rules.check_time_zone = true;
  return rules;
}

std::vector<std::string> Fields(const v1::ProfileContent& content) {
  errors::Validator validator;
  CheckProfileContent(content, "content.", FrontRules(), validator);
  std::vector<std::string> fields;
  for (const errors::FieldViolation& violation : errors::FieldViolations(validator.Finish())) {
    fields.push_back(violation.field);
  }
  return fields;
}

TEST(ProfileValidation, AValidProfilePasses) { EXPECT_TRUE(Fields(ValidContent()).empty()); }

TEST(ProfileValidation, UnknownCategory) {
  v1::ProfileContent content = ValidContent("Hi", "quantum-gardening");
  EXPECT_THAT(Fields(content), ElementsAre("content.category_ids[0]"));
}

TEST(ProfileValidation, NegativeOrForeignPrice) {
  v1::ProfileContent content = ValidContent();
  content.mutable_price()->mutable_per_minute()->mutable_rate()->set_amount_minor(-5);
  EXPECT_THAT(Fields(content), ElementsAre("content.price.per_minute.rate.amount_minor"));
  content = ValidContent();
  content.mutable_price()->mutable_per_minute()->mutable_rate()->set_currency_code("USD");
  EXPECT_THAT(Fields(content), ElementsAre("content.price.per_minute.rate.currency_code"));
  content.clear_price();
  EXPECT_THAT(Fields(content), ElementsAre("content.price"));
  content.mutable_price()->mutable_fixed()->mutable_price()->set_currency_code("EUR");
  content.mutable_price()->mutable_fixed()->mutable_price()->set_amount_minor(2000);
  content.mutable_price()->mutable_fixed()->set_session_minutes(2);
  EXPECT_THAT(Fields(content), ElementsAre("content.price.fixed.session_minutes"));
}

TEST(ProfileValidation, OverlappingWindowsOnTheSameDay) {
  v1::ProfileContent content = ValidContent();
  v1::WeeklyWindow& overlapping = *content.mutable_availability()->add_weekly();
  overlapping.set_weekday(v1::WEEKDAY_MONDAY);
  overlapping.mutable_time()->set_start_minute(11 * 60);
  overlapping.mutable_time()->set_end_minute(13 * 60);
  v1::WeeklyWindow& tuesday = *content.mutable_availability()->add_weekly();
  tuesday.set_weekday(v1::WEEKDAY_TUESDAY);
  tuesday.mutable_time()->set_start_minute(11 * 60);
  tuesday.mutable_time()->set_end_minute(13 * 60);
  EXPECT_THAT(Fields(content), ElementsAre("content.availability.weekly[1]"));

  content = ValidContent();
  v1::AvailabilityException& holiday = *content.mutable_availability()->add_exceptions();
  holiday.mutable_date()->set_year(2026);
  holiday.mutable_date()->set_month(2);
  holiday.mutable_date()->set_day(30);
  v1::TimeRange& backwards = *holiday.add_times();
  backwards.set_start_minute(600);
  backwards.set_end_minute(500);
  EXPECT_THAT(Fields(content), UnorderedElementsAre("content.availability.exceptions[0].date",
                                                    "content.availability.exceptions[0].times[0]"));
}

TEST(ProfileValidation, InvalidTimeZoneOrLanguage) {
  v1::ProfileContent content = ValidContent();
  content.mutable_availability()->set_time_zone("Europe/Atlantis");
  content.add_languages("english");
  content.add_languages("xx");
  content.add_languages("DE");
  EXPECT_THAT(Fields(content),
              UnorderedElementsAre("content.availability.time_zone", "content.languages[2]",
                                   "content.languages[3]", "content.languages[4]"))
      << "\"DE\" is \"de\" again";
}

// Only zone names reach the zone loader: no paths, nothing it would cache
// as a failure for good.
TEST(ProfileValidation, TimeZonesAreIanaNamesOnly) {
  for (const char* zone : {"Europe/Berlin", "America/Port-au-Prince", "Etc/GMT+5", "UTC",
                           "America/Argentina/Buenos_Aires"}) {
    v1::ProfileContent content = ValidContent();
    content.mutable_availability()->set_time_zone(zone);
    EXPECT_TRUE(Fields(content).empty()) << zone;
  }
  for (const char* zone : {"file:/etc/passwd", "/etc/localtime", "Europe/../../etc/passwd",
                           "Europe//Berlin", "Europe/Berlin/", "+05:00", "Europe/Ber lin",
                           "Europe/Nowhere", "localtime", "posixrules", "posix/Europe/Berlin",
                           "right/UTC", "Factory"}) {
    v1::ProfileContent content = ValidContent();
    content.mutable_availability()->set_time_zone(zone);
    EXPECT_THAT(Fields(content), UnorderedElementsAre("content.availability.time_zone")) << zone;
  }
}

TEST(ProfileValidation, TextLimitsAndUrl) {
  v1::ProfileContent content = ValidContent(std::string(121, 'x'));
  content.set_public_name("");
  content.add_skills("Gears");
  content.set_intro_video_url("http://example.com/video");
  EXPECT_THAT(Fields(content),
              UnorderedElementsAre("content.public_name", "content.headline", "content.skills[2]",
                                   "content.intro_video_url"));
}

TEST(PricePerMinute, FixedPricesRoundUp) {
  v1::PriceTerms price;
  price.mutable_fixed()->mutable_price()->set_amount_minor(1000);
  price.mutable_fixed()->set_session_minutes(30);
  EXPECT_EQ(PricePerMinute(price), 34);
  price.mutable_per_minute()->mutable_rate()->set_amount_minor(75);
  EXPECT_EQ(PricePerMinute(price), 75);
}

TEST(SponsorTermsValidation, NamesTheFields) {
  v1::SponsorProgramTerms terms;
  terms.set_name("Spring");
  terms.add_expert_ids("not-a-uuid");
  terms.set_free_sessions_per_person(1);
  terms.set_max_minutes_per_session(500);
  errors::Validator validator;
  CheckSponsorTerms(terms, "terms.", FrontRules(), validator);
  std::vector<std::string> fields;
  for (const auto& violation : errors::FieldViolations(validator.Finish())) {
    fields.push_back(violation.field);
  }
  EXPECT_THAT(fields, UnorderedElementsAre("terms.expert_ids[0]", "terms.max_minutes_per_session",
                                           "terms.active_from"));
}

}  // namespace
}  // namespace helpline::catalog
