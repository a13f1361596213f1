#include "services/catalog/domain/validation.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/language_tags.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/core/text_checks.h"
#include "services/runtime/privacy/pii_vault.h"

namespace helpline::catalog {
namespace {

// The shape of an IANA zone name ("Europe/Berlin", "America/Port-au-Prince",
// "Etc/GMT+5"): parts of letters, digits, '_', '-' and '+', each starting with
// a letter. Keeps "file:" paths and ".." away from the zone loader.
bool IanaZoneName(std::string_view zone) {
  if (zone.empty() || zone.size() > 64) return false;
  // Files in the zone folder that are not zones of a place, or that follow the
  // machine's own setting ("localtime").
  const absl::string_view name(zone.data(), zone.size());
  if (absl::StartsWith(name, "posix/") || absl::StartsWith(name, "right/") ||
      name == "localtime" || name == "posixrules" || name == "Factory") {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(absl::string_view(zone.data(), zone.size()), '/')) {
    if (part.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(part.front()))) return false;
    for (char c : part) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '+') {
        return false;
      }
    }
  }
  return true;
}

std::filesystem::path ZoneInfoDirectory() {
  const char* directory = std::getenv("TZDIR");
  return directory != nullptr && *directory != '\0' ? directory : "/usr/share/zoneinfo";
}

constexpr int64_t kMaxRatePerMinute = 100'000;  // 1000.00 a minute
constexpr int64_t kMaxFixedPrice = 10'000'000;

bool IsCurrencyCode(const std::string& code) {
  return code.size() == 3 && std::all_of(code.begin(), code.end(),
                                         [](char c) { return c >= 'A' && c <= 'Z'; });
}

void CheckMoney(const runtime::v1::Money& money, int64_t max, const std::string& field,
                const ContentRules& rules, errors::Validator& validator) {
  if (!IsCurrencyCode(money.currency_code())) {
    validator.Add(field + ".currency_code", "must be an ISO 4217 code such as \"EUR\"");
  } else if (!rules.currency.empty() && money.currency_code() != rules.currency) {
    validator.Add(field + ".currency_code",
                  absl::StrCat("must be ", rules.currency, ", this deployment's currency"));
  }
  validator.Check(money.amount_minor() > 0 && money.amount_minor() <= max,
                  field + ".amount_minor",
                  absl::StrCat("must be more than 0 and at most ", max, " minor units"));
}

struct Span {
  int start;
  int end;
  std::string field;
};

// Adds a violation for each range that overlaps an earlier one.
void CheckNoOverlap(std::vector<Span> spans, errors::Validator& validator) {
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.start < b.start; });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].start < spans[i - 1].end) {
      validator.Add(spans[i].field, absl::StrCat("overlaps ", spans[i - 1].field));
    }
  }
}

bool CheckTimeRange(const v1::TimeRange& range, const std::string& field,
                    errors::Validator& validator) {
  bool ok = range.start_minute() >= 0 && range.start_minute() < 1440 &&
            range.end_minute() > range.start_minute() && range.end_minute() <= 1440;
  validator.Check(ok, field,
                  "must have 0 <= start_minute < end_minute <= 1440 (minutes after midnight)");
  return ok;
}

void CheckCategoryIds(const google::protobuf::RepeatedPtrField<std::string>& ids, int min, int max,
                      const std::string& field, const ContentRules& rules,
                      errors::Validator& validator) {
  validator.Check(ids.size() >= min && ids.size() <= max, field,
                  absl::StrCat("must name ", min, " to ", max, " categories"));
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < ids.size(); ++i) {
    std::string item = absl::StrCat(field, "[", i, "]");
    if (!seen.insert(ids[i]).second) {
      validator.Add(item, "is listed twice");
    } else if (rules.active_category && !rules.active_category(ids[i])) {
      validator.Add(item, absl::StrCat("\"", ids[i], "\" is not an active category"));
    } else if (!rules.active_category && !IsCategorySlug(ids[i])) {
      validator.Add(item, "must be a category id");
    }
  }
}

}  // namespace

bool IsCategorySlug(std::string_view id) {
  if (id.size() < 2 || id.size() > 40 || id.front() == '-' || id.back() == '-') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

void CheckPriceTerms(const v1::PriceTerms& price, const std::string& prefix,
                     const ContentRules& rules, errors::Validator& validator) {
  switch (price.kind_case()) {
    case v1::PriceTerms::kPerMinute:
      CheckMoney(price.per_minute().rate(), kMaxRatePerMinute, prefix + "per_minute.rate", rules,
                 validator);
      validator.Check(price.per_minute().minimum_minutes() >= 1 &&
                          price.per_minute().minimum_minutes() <= 60,
                      prefix + "per_minute.minimum_minutes", "must be 1 to 60");
      break;
    case v1::PriceTerms::kFixed:
      CheckMoney(price.fixed().price(), kMaxFixedPrice, prefix + "fixed.price", rules, validator);
      validator.Check(price.fixed().session_minutes() >= 5 &&
                          price.fixed().session_minutes() <= 240,
                      prefix + "fixed.session_minutes", "must be 5 to 240");
      break;
    case v1::PriceTerms::KIND_NOT_SET:
      validator.Add(prefix.substr(0, prefix.size() - 1), "must be per_minute or fixed");
      break;
  }
}

void CheckAvailability(const v1::Availability& availability, const std::string& prefix,
                       const ContentRules& rules, errors::Validator& validator) {
  const std::string& zone = availability.time_zone();
  bool zone_ok = IanaZoneName(zone);
  if (zone_ok && rules.check_time_zone) {
    // A name absl cannot load is cached by it for good: only files that exist are tried.
    std::error_code error;
    zone_ok = std::filesystem::is_regular_file(ZoneInfoDirectory() / zone, error);
    absl::TimeZone loaded;
    zone_ok = zone_ok && absl::LoadTimeZone(zone, &loaded);
  }
  validator.Check(zone_ok, prefix + "time_zone",
                  "must be an IANA time zone such as \"Europe/Berlin\"");
  validator.Check(availability.weekly_size() <= 70, prefix + "weekly", "at most 70 windows");
  std::vector<std::vector<Span>> by_day(8);
  for (int i = 0; i < availability.weekly_size(); ++i) {
    const v1::WeeklyWindow& window = availability.weekly(i);
    std::string field = absl::StrCat(prefix, "weekly[", i, "]");
    if (window.weekday() == v1::WEEKDAY_UNSPECIFIED || !v1::Weekday_IsValid(window.weekday())) {
      validator.Add(field + ".weekday", "must be a day of the week");
      continue;
    }
    if (CheckTimeRange(window.time(), field + ".time", validator)) {
      by_day[window.weekday()].push_back(
          {window.time().start_minute(), window.time().end_minute(), field});
    }
  }
  for (std::vector<Span>& day : by_day) CheckNoOverlap(std::move(day), validator);

  validator.Check(availability.exceptions_size() <= 366, prefix + "exceptions",
                  "at most 366 dated exceptions");
  absl::flat_hash_set<absl::CivilDay> dates;
  for (int i = 0; i < availability.exceptions_size(); ++i) {
    const v1::AvailabilityException& exception = availability.exceptions(i);
    std::string field = absl::StrCat(prefix, "exceptions[", i, "]");
    const v1::LocalDate& date = exception.date();
    absl::CivilDay day(date.year(), date.month(), date.day());
    bool date_ok = date.year() >= 2000 && date.year() <= 2200 && day.year() == date.year() &&
                   day.month() == date.month() && day.day() == date.day();
    if (!date_ok) {
      validator.Add(field + ".date", "must be a real calendar date");
    } else if (!dates.insert(day).second) {
      validator.Add(field + ".date", "has another exception on the same date");
    }
    std::vector<Span> spans;
    for (int k = 0; k < exception.times_size(); ++k) {
      std::string time_field = absl::StrCat(field, ".times[", k, "]");
      if (CheckTimeRange(exception.times(k), time_field, validator)) {
        spans.push_back({exception.times(k).start_minute(), exception.times(k).end_minute(),
                         time_field});
      }
    }
    CheckNoOverlap(std::move(spans), validator);
  }
}

void CheckProfileContent(const v1::ProfileContent& content, const std::string& prefix,
                         const ContentRules& rules, errors::Validator& validator) {
  auto check = [&](const std::string& value, int min, int max, const std::string& field,
                   bool multiline) {
    if (rules.sealed_texts && privacy::IsSealedText(value)) return;
    text::CheckText(value, min, max, prefix + field, validator, multiline);
  };
  check(content.public_name(), 1, 80, "public_name", false);
  check(content.headline(), 1, 120, "headline", false);
  check(content.bio(), 0, 4000, "bio", true);
  validator.Check(content.skills_size() <= 30, prefix + "skills", "at most 30 skills");
  absl::flat_hash_set<std::string> skills;
  for (int i = 0; i < content.skills_size(); ++i) {
    std::string field = absl::StrCat(prefix, "skills[", i, "]");
    text::CheckText(content.skills(i), 1, 40, field, validator);
    if (!skills.insert(absl::AsciiStrToLower(content.skills(i))).second) {
      validator.Add(field, "is listed twice");
    }
  }
  CheckCategoryIds(content.category_ids(), 1, 5, prefix + "category_ids", rules, validator);
  validator.Check(content.languages_size() >= 1 && content.languages_size() <= 10,
                  prefix + "languages", "must name 1 to 10 languages");
  absl::flat_hash_set<std::string> languages;
  for (int i = 0; i < content.languages_size(); ++i) {
    std::string field = absl::StrCat(prefix, "languages[", i, "]");
    std::optional<std::string> tag = text::NormaliseLanguageTag(content.languages(i));
    if (!tag) {
      validator.Add(field, "must be a BCP 47 language tag such as \"de\" or \"en-GB\"");
    } else if (!languages.insert(*tag).second) {
      validator.Add(field, "is listed twice");
    }
  }
  CheckPriceTerms(content.price(), prefix + "price.", rules, validator);
  CheckAvailability(content.availability(), prefix + "availability.", rules, validator);
  const std::string& url = content.intro_video_url();
  bool url_ok = url.empty() || (absl::StartsWith(url, "https://") && url.size() > 8 &&
                                url.size() <= 2048 &&
                                std::none_of(url.begin(), url.end(), [](char c) {
                                  return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
                                }));
  validator.Check(url_ok, prefix + "intro_video_url", "must be an https:// URL (or empty)");
}

void CheckSponsorTerms(const v1::SponsorProgramTerms& terms, const std::string& prefix,
                       const ContentRules& rules, errors::Validator& validator) {
  text::CheckText(terms.name(), 1, 80, prefix + "name", validator);
  text::CheckText(terms.description(), 0, 2000, prefix + "description", validator, true);
  if (terms.category_ids().empty() && terms.expert_ids().empty()) {
    validator.Add(prefix + "category_ids", "name categories or experts to sponsor");
  }
  if (!terms.category_ids().empty()) {
    CheckCategoryIds(terms.category_ids(), 1, 50, prefix + "category_ids", rules, validator);
  }
  validator.Check(terms.expert_ids_size() <= 500, prefix + "expert_ids", "at most 500 experts");
  absl::flat_hash_set<std::string> experts;
  for (int i = 0; i < terms.expert_ids_size(); ++i) {
    std::string field = absl::StrCat(prefix, "expert_ids[", i, "]");
    if (!ids::IsUuid(terms.expert_ids(i))) {
      validator.Add(field, "must be an expert's user id");
    } else if (!experts.insert(terms.expert_ids(i)).second) {
      validator.Add(field, "is listed twice");
    }
  }
  validator.Check(terms.free_sessions_per_person() >= 1 && terms.free_sessions_per_person() <= 100,
                  prefix + "free_sessions_per_person", "must be 1 to 100");
  validator.Check(terms.max_minutes_per_session() >= 1 && terms.max_minutes_per_session() <= 240,
                  prefix + "max_minutes_per_session", "must be 1 to 240");
  validator.Check(terms.has_active_from(), prefix + "active_from", "is required");
  if (terms.has_active_until()) {
    validator.Check(FromProtoTime(terms.active_until()) > FromProtoTime(terms.active_from()),
                    prefix + "active_until", "must be after active_from");
  }
}

v1::ProfileContent Normalised(v1::ProfileContent content) {
  for (std::string& language : *content.mutable_languages()) {
    if (std::optional<std::string> tag = text::NormaliseLanguageTag(language)) language = *tag;
  }
  return content;
}

int64_t PricePerMinute(const v1::PriceTerms& price) {
  if (price.has_per_minute()) return price.per_minute().rate().amount_minor();
  if (price.has_fixed() && price.fixed().session_minutes() > 0) {
    int64_t minutes = price.fixed().session_minutes();
    return (price.fixed().price().amount_minor() + minutes - 1) / minutes;
  }
  return 0;
}

}  // namespace helpline::catalog
