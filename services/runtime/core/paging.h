#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Opaque page tokens for list RPCs (keyset pagination: a token names the
// last item of the page before) and the usual page_size rule.
namespace helpline::paging {

std::string EncodeToken(const std::vector<std::string>& parts);
// The parts, or nullopt if `token` is not one EncodeToken made with `parts` parts.
std::optional<std::vector<std::string>> DecodeToken(const std::string& token, size_t parts);

// 0 means `fallback`; otherwise 1 to `max`, else INVALID_ARGUMENT on "page_size".
absl::StatusOr<int> PageSize(int requested, int fallback = 20, int max = 100);

// A list ordered by (time, id): the token of its item, and back.
using TimeKey = std::pair<absl::Time, std::string>;
std::string EncodeTimeKey(const TimeKey& key);
// Nullopt for an empty token; INVALID_ARGUMENT on "page_token" for a bad one.
absl::StatusOr<std::optional<TimeKey>> DecodeTimeKey(const std::string& token);

// One page of a list ordered newest first by (time, id): `fetch(after,
// limit)` gives up to `limit` items after the token's key; `key_of(item)`
// is an item's key; `add(item)` puts it in the response. Sets `next_token`
// when there are more.
template <class Fetch, class KeyOf, class Add>
absl::Status ListPage(int requested_size, const std::string& token, Fetch fetch, KeyOf key_of,
                      Add add, std::string* next_token) {
  absl::StatusOr<int> size = PageSize(requested_size);
  if (!size.ok()) return size.status();
  absl::StatusOr<std::optional<TimeKey>> after = DecodeTimeKey(token);
  if (!after.ok()) return after.status();
  auto items = fetch(*after, static_cast<size_t>(*size) + 1);
  bool more = items.size() > static_cast<size_t>(*size);
  if (more) {
    items.pop_back();
    *next_token = EncodeTimeKey(key_of(items.back()));
  }
  for (auto& item : items) add(std::move(item));
  return absl::OkStatus();
}

}  // namespace helpline::paging
