#include "services/identity/domain/validation.h"

#include "absl/strings/ascii.h"
#include "services/runtime/core/text_checks.h"

namespace helpline::identity {
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
  int length = text::Utf8Length(password);
  validator.Check(length >= 10 && length <= 128, field,
                  "must be 10 to 128 characters of text");
  std::optional<std::string> as_email = NormaliseEmail(password);
  std::optional<std::string> normalised_email = NormaliseEmail(email);
  validator.Check(!as_email || !normalised_email || *as_email != *normalised_email, field,
                  "must not be the email address");
}

void CheckDisplayName(std::string_view name, const std::string& field,
                      errors::Validator& validator) {
  text::CheckText(name, 1, 80, field, validator);
}

}  // namespace helpline::identity
