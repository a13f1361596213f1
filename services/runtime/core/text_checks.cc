#include "services/runtime/core/text_checks.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"

namespace helpline::text {

namespace {

// Characters that make text read differently from how it is stored: C1
// controls, the bidi embeddings, overrides and isolates, the byte-order mark.
bool Disguising(char32_t code_point) {
  return (code_point >= 0x80 && code_point <= 0x9f) ||
         (code_point >= 0x202a && code_point <= 0x202e) ||
         (code_point >= 0x2066 && code_point <= 0x2069) || code_point == 0xfeff;
}

// Invisible in one line of text (a name, a title): the zero-width space, word
// joiner and invisible operators, line and paragraph separators. Paragraphs
// keep them (Thai and Japanese text from the web carries zero-width spaces).
// Zero-width joiners (emoji, Indic and Persian scripts) and the left-to-right
// and right-to-left marks stay allowed everywhere.
bool InvisibleInALine(char32_t code_point) {
  return code_point == 0x200b || (code_point >= 0x2060 && code_point <= 0x2064) ||
         code_point == 0x2028 || code_point == 0x2029;
}

// Shows nothing on its own: spaces of every width, blank fillers, joiners and
// marks. Text of these alone is blank.
bool Blank(char32_t code_point) {
  return code_point == ' ' || code_point == '\t' || code_point == '\n' || code_point == '\r' ||
         code_point == 0xa0 || code_point == 0xad || code_point == 0x34f || code_point == 0x61c ||
         code_point == 0x115f || code_point == 0x1160 || code_point == 0x17b4 ||
         code_point == 0x17b5 || (code_point >= 0x180b && code_point <= 0x180e) ||
         (code_point >= 0x2000 && code_point <= 0x200f) ||
         code_point == 0x2028 || code_point == 0x2029 || code_point == 0x202f ||
         code_point == 0x205f || (code_point >= 0x2060 && code_point <= 0x2064) ||
         code_point == 0x2800 || code_point == 0x3000 || code_point == 0x3164 ||
         (code_point >= 0xfe00 && code_point <= 0xfe0f) || code_point == 0xffa0 ||
         (code_point >= 0xe0000 && code_point <= 0xe007f);
}

// Code points of `text`, or nullopt if it is not UTF-8 (overlong, surrogate
// or out-of-range sequences included).
std::optional<std::vector<char32_t>> Decode(std::string_view text) {
  std::vector<char32_t> code_points;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t extra;
    char32_t code_point;
    if (c < 0x80) {
      extra = 0;
      code_point = c;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
      extra = 1;
      code_point = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      code_point = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
      extra = 3;
      code_point = c & 0x07;
    } else {
      return std::nullopt;
    }
    if (i + extra >= text.size() && extra > 0) return std::nullopt;
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return std::nullopt;
      code_point = (code_point << 6) | (next & 0x3f);
    }
    const bool overlong = (extra == 2 && code_point < 0x800) || (extra == 3 && code_point < 0x10000);
    const bool surrogate = code_point >= 0xd800 && code_point <= 0xdfff;
    if (overlong || surrogate || code_point > 0x10ffff) return std::nullopt;
    code_points.push_back(code_point);
    i += extra + 1;
  }
  return code_points;
}

// No control, disguising or (in one line) invisible character.
bool Allowed(const std::vector<char32_t>& code_points, bool multiline) {
  return std::none_of(code_points.begin(), code_points.end(), [multiline](char32_t c) {
    const bool allowed_control = multiline && (c == '\n' || c == '\t' || c == '\r');
    return ((c < 0x20 || c == 0x7f) && !allowed_control) || Disguising(c) ||
           (!multiline && InvisibleInALine(c));
  });
}

bool AnyVisible(const std::vector<char32_t>& code_points) {
  return std::any_of(code_points.begin(), code_points.end(), [](char32_t c) { return !Blank(c); });
}

}  // namespace

int Utf8Length(std::string_view text, bool multiline) {
  std::optional<std::vector<char32_t>> code_points = Decode(text);
  if (!code_points || !Allowed(*code_points, multiline)) return -1;
  return static_cast<int>(code_points->size());
}

bool Visible(std::string_view text) {
  std::optional<std::vector<char32_t>> code_points = Decode(text);
  return code_points && AnyVisible(*code_points);
}

void CheckText(std::string_view text, int min_length, int max_length, const std::string& field,
               errors::Validator& validator, bool multiline) {
  // A code point takes at most 4 bytes: longer text is too long undecoded.
  std::optional<std::vector<char32_t>> code_points;
  if (text.size() <= static_cast<size_t>(max_length) * 4) code_points = Decode(text);
  const bool valid = code_points && Allowed(*code_points, multiline);
  const int length = valid ? static_cast<int>(code_points->size()) : -1;
  const bool blank = !valid || !AnyVisible(*code_points);
  std::string what = min_length > 0 ? absl::StrCat("must be ", min_length, " to ", max_length)
                                    : absl::StrCat("must be at most ", max_length);
  validator.Check(length >= min_length && length <= max_length && (min_length == 0 || !blank),
                  field,
                  absl::StrCat(what, " characters of text without control or invisible characters"));
}

void CheckRequestId(std::string_view request_id, const std::string& field,
                    errors::Validator& validator) {
  bool printable = !request_id.empty() && request_id.size() <= 128;
  for (char c : request_id) printable = printable && c > 0x20 && c < 0x7f;
  validator.Check(printable, field, "must be 1 to 128 printable ASCII characters");
}

}  // namespace helpline::text
