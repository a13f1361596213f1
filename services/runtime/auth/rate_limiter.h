#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/runtime/core/clock.h"

namespace helpline::auth {

// A token bucket per key (a user, a peer address, an account): `burst`
// calls at once, then `per_second` on average. Per replica.
class RateLimiter {
 public:
  RateLimiter(double per_second, double burst, const Clock& clock);

  // OK, or RESOURCE_EXHAUSTED with RetryInfo saying when to try again.
  absl::Status Take(const std::string& key);
  // Returns a token Take gave, for a call refused before it did anything.
  void GiveBack(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };

  const double per_second_;
  const double burst_;
  const Clock& clock_;
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mutex_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::auth
