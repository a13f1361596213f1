#include "services/runtime/core/language_tags.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace helpline::text {
namespace {

// ISO 639-1 (two-letter) language codes.
const absl::flat_hash_set<std::string>& TwoLetterLanguages() {
  static const auto* codes = [] {
    auto* set = new absl::flat_hash_set<std::string>();
    for (absl::string_view code : absl::StrSplit(
             "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs "
             "cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha "
             "he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn "
             "ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb "
             "nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd "
             "se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw "
             "ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu",
             ' ')) {
      set->insert(std::string(code));
    }
    return set;
  }();
  return *codes;
}

bool AllOf(std::string_view text, bool (*predicate)(unsigned char)) {
  return std::all_of(text.begin(), text.end(),
                     [&](char c) { return predicate(static_cast<unsigned char>(c)); });
}

}  // namespace

std::optional<std::string> NormaliseLanguageTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 35) return std::nullopt;
  std::vector<std::string> parts = absl::StrSplit(std::string(tag), absl::ByAnyChar("-_"));
  std::string language = absl::AsciiStrToLower(parts[0]);
  if (!AllOf(language, absl::ascii_isalpha)) return std::nullopt;
  if (language.size() == 2) {
    if (!TwoLetterLanguages().contains(language)) return std::nullopt;
  } else if (language.size() != 3) {
    return std::nullopt;
  }
  std::string out = language;
  size_t i = 1;
  if (i < parts.size() && parts[i].size() == 4 && AllOf(parts[i], absl::ascii_isalpha)) {
    std::string script = absl::AsciiStrToLower(parts[i]);
    script[0] = absl::ascii_toupper(script[0]);
    absl::StrAppend(&out, "-", script);
    ++i;
  }
  if (i < parts.size() && ((parts[i].size() == 2 && AllOf(parts[i], absl::ascii_isalpha)) ||
                           (parts[i].size() == 3 && AllOf(parts[i], absl::ascii_isdigit)))) {
    absl::StrAppend(&out, "-", absl::AsciiStrToUpper(parts[i]));
    ++i;
  }
  for (; i < parts.size(); ++i) {
    const std::string& variant = parts[i];
    bool long_variant = variant.size() >= 5 && variant.size() <= 8;
    bool digit_variant = variant.size() == 4 && absl::ascii_isdigit(variant[0]);
    if (!(long_variant || digit_variant) || !AllOf(variant, absl::ascii_isalnum)) {
      return std::nullopt;
    }
    absl::StrAppend(&out, "-", absl::AsciiStrToLower(variant));
  }
  return out;
}

}  // namespace helpline::text
