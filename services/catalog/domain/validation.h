#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "helpline/catalog/v1/catalog.pb.h"
#include "services/runtime/core/errors.h"

// Catalog's input rules. The front applies all of them with the read model
// at hand; the processor applies the ones that need nothing outside the
// command (no category lookup, no time-zone files).
namespace helpline::catalog {

struct ContentRules {
  // The deployment's ISO 4217 code; empty: any well-formed code.
  std::string currency;
  // Whether a category id names an active category; null: not checked.
  std::function<bool(const std::string&)> active_category;
  // Loads the IANA time zone to check it exists (reads tzdata).
  bool check_time_zone = false;
  // The processor's view: name, headline and bio may arrive sealed with the
  // expert's key (the front checked them before sealing).
  bool sealed_texts = false;
};


// 2 to 40 of a-z, 0-9 and "-", not starting or ending with "-".
bool IsCategorySlug(std::string_view id);

// Every rule of ProfileContent; violations are named `prefix` + field path.
void CheckProfileContent(const v1::ProfileContent& content, const std::string& prefix,
                         const ContentRules& rules, errors::Validator& validator);
void CheckPriceTerms(const v1::PriceTerms& price, const std::string& prefix,
                     const ContentRules& rules, errors::Validator& validator);
void CheckAvailability(const v1::Availability& availability, const std::string& prefix,
                       const ContentRules& rules, errors::Validator& validator);
void CheckSponsorTerms(const v1::SponsorProgramTerms& terms, const std::string& prefix,
                       const ContentRules& rules, errors::Validator& validator);

// The content with its language tags in canonical case (unknown ones kept).
v1::ProfileContent Normalised(v1::ProfileContent content);

// Price per minute in minor units, rounded up, for comparing and sorting
// both kinds of price: a fixed price counts as price / session minutes.
int64_t PricePerMinute(const v1::PriceTerms& price);

}  // namespace helpline::catalog
