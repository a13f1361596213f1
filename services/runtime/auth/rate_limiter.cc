#include "services/runtime/auth/rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"

namespace helpline::auth {

RateLimiter::RateLimiter(double per_second, double burst, const Clock& clock)
    : per_second_(per_second), burst_(burst), clock_(clock), last_sweep_(clock.Now()) {}

absl::Status RateLimiter::Take(const std::string& key) {
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mutex_);
  // Buckets that have refilled completely carry no information: forget them.
  if (now - last_sweep_ > absl::Minutes(1)) {
    absl::erase_if(buckets_, [&](const auto& entry) {
      return entry.second.tokens + absl::ToDoubleSeconds(now - entry.second.updated) * per_second_ >=
             burst_;
    });
    last_sweep_ = now;
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& bucket = it->second;
  bucket.tokens = std::min(
      burst_, bucket.tokens + absl::ToDoubleSeconds(now - bucket.updated) * per_second_);
  bucket.updated = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return absl::OkStatus();
  }
  absl::Duration wait = absl::Seconds((1 - bucket.tokens) / per_second_);
  return errors::RetryLater(
      absl::StrCat("too many requests; try again in ", absl::ToInt64Milliseconds(wait), " ms"),
      wait);
}

void RateLimiter::GiveBack(const std::string& key) {
  absl::MutexLock lock(&mutex_);
  auto it = buckets_.find(key);
  if (it != buckets_.end()) it->second.tokens = std::min(burst_, it->second.tokens + 1);
}

}  // namespace helpline::auth
