#include "services/runtime/core/paging.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/core/errors.h"

namespace helpline::paging {

std::string EncodeToken(const std::vector<std::string>& parts) {
  return Base64UrlEncode(absl::StrJoin(parts, "\n"));
}

std::optional<std::vector<std::string>> DecodeToken(const std::string& token, size_t parts) {
  absl::StatusOr<std::string> text = Base64UrlDecode(token);
  if (!text.ok()) return std::nullopt;
  std::vector<std::string> split = absl::StrSplit(*text, '\n');
  if (split.size() != parts) return std::nullopt;
  return split;
}

absl::StatusOr<int> PageSize(int requested, int fallback, int max) {
  if (requested == 0) return fallback;
  if (requested < 1 || requested > max) {
    return errors::InvalidField(
        "page_size", absl::StrCat("must be 1 to ", max, " (0 means ", fallback, ")"));
  }
  return requested;
}

std::string EncodeTimeKey(const TimeKey& key) {
  return EncodeToken({absl::StrCat(absl::ToUnixNanos(key.first)), key.second});
}

absl::StatusOr<std::optional<TimeKey>> DecodeTimeKey(const std::string& token) {
  if (token.empty()) return std::nullopt;
  std::optional<std::vector<std::string>> parts = DecodeToken(token, 2);
  int64_t nanos = 0;
  if (!parts || !absl::SimpleAtoi((*parts)[0], &nanos)) {
    return errors::InvalidField("page_token", "is not a token this call returned");
  }
  return TimeKey{absl::FromUnixNanos(nanos), (*parts)[1]};
}

}  // namespace helpline::paging
