#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace helpline::text {

// A BCP 47 language tag in its canonical case ("en-gb" -> "en-GB",
// "zh-hant-tw" -> "zh-Hant-TW"): an ISO 639-1 or three-letter language, then
// an optional script, region and variants; nullopt if it is not one.
std::optional<std::string> NormaliseLanguageTag(std::string_view tag);

}  // namespace helpline::text
