#include "services/runtime/core/text_checks.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace helpline::text {

namespace {

// Characters that change how the text around them looks without showing
// themselves: C1 controls, the bidi embeddings, overrides and isolates (text
// that reads differently from how it is stored), the zero-width space, word
// joiner and invisible operators, the byte-order mark. Zero-width joiners
// (emoji sequences, Indic and Persian scripts) and the left-to-right and
// right-to-left marks stay allowed.
bool Invisible(char32_t code_point) {
  return (code_point >= 0x80 && code_point <= 0x9f) || code_point == 0x180e ||
         code_point == 0x200b || (code_point >= 0x202a && code_point <= 0x202e) ||
         (code_point >= 0x2060 && code_point <= 0x2064) ||
         (code_point >= 0x2066 && code_point <= 0x2069) || code_point == 0xfeff;
}

}  // namespace

int Utf8Length(std::string_view text, bool multiline) {
  int count = 0;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t extra;
    char32_t code_point;
    if (c < 0x80) {
      bool allowed_control = multiline && (c == '\n' || c == '\t' || c == '\r');
      if ((c < 0x20 || c == 0x7f) && !allowed_control) return -1;
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
      return -1;
    }
    if (i + extra >= text.size() && extra > 0) return -1;
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return -1;
      code_point = (code_point << 6) | (next & 0x3f);
    }
    const bool overlong = (extra == 2 && code_point < 0x800) || (extra == 3 && code_point < 0x10000);
    const bool surrogate = code_point >= 0xd800 && code_point <= 0xdfff;
    if (overlong || surrogate || code_point > 0x10ffff || Invisible(code_point)) return -1;
    i += extra + 1;
    ++count;
  }
  return count;
}

void CheckText(std::string_view text, int min_length, int max_length, const std::string& field,
               errors::Validator& validator, bool multiline) {
  int length = Utf8Length(text, multiline);
  bool blank = absl::StripAsciiWhitespace(std::string(text)).empty();
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
