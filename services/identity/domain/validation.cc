#include "services/identity/domain/validation.h"

#include "absl/strings/ascii.h"

namespace helpline::identity {
namespace {

// Counts code points; -1 if the bytes are not UTF-8 or hold a control character.
int Utf8Length(std::string_view text) {
  int count = 0;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t extra;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return -1;
      extra = 0;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
      extra = 1;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
    } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
      extra = 3;
    } else {
      return -1;
    }
    if (i + extra >= text.size() && extra > 0) return -1;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return -1;
    }
    i += extra + 1;
    ++count;
  }
  return count;
}

}  // namespace

std::optional<std::string> NormaliseEmail(std::string_view email) {
  std::string text(absl::StripAsciiWhitespace(std::string(email)));
  if (text.empty() || text.size() > 254) return std::nullopt;
  size_t at = text.find('@');
  if (at == std::string::npos || at == 0 || at != text.rfind('@')) return std::nullopt;
  std::string domain = text.substr(at + 1);
  size_t dot = domain.rfind('.');
  if (domain.empty() || dot == std::string::npos || dot == 0 || dot + 1 >= domain.size() ||
      domain.find("..") != std::string::npos) {
    return std::nullopt;
  }
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return std::nullopt;
  }
  return absl::AsciiStrToLower(text);
}

void CheckPassword(std::string_view password, std::string_view email, const std::string& field,
                   errors::Validator& validator) {
  int length = Utf8Length(password);
  validator.Check(length >= 10 && length <= 128, field,
                  "must be 10 to 128 characters of text");
  std::optional<std::string> as_email = NormaliseEmail(password);
  std::optional<std::string> normalised_email = NormaliseEmail(email);
  validator.Check(!as_email || !normalised_email || *as_email != *normalised_email, field,
                  "must not be the email address");
}

void CheckDisplayName(std::string_view name, const std::string& field,
                      errors::Validator& validator) {
  int length = Utf8Length(name);
  validator.Check(length >= 1 && length <= 80 &&
                      !absl::StripAsciiWhitespace(std::string(name)).empty(),
                  field, "must be 1 to 80 characters without control characters");
}

void CheckRequestId(std::string_view request_id, const std::string& field,
                    errors::Validator& validator) {
  bool printable = !request_id.empty() && request_id.size() <= 128;
  for (char c : request_id) printable = printable && c > 0x20 && c < 0x7f;
  validator.Check(printable, field, "must be 1 to 128 printable ASCII characters");
}

}  // namespace helpline::identity
