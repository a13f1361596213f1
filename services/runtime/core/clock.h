#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/runtime/server/config.h"

namespace helpline {

// Where every service reads the time. Domain code gets the time from its
// caller; only the runtime asks a Clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The machine's clock, optionally sped up: at `rate` 60 a minute of service
// time passes every real second, counted from `anchor`, so that the local demo
// and end-to-end tests run a journey in seconds. Processes given the same
// rate and anchor agree on the time.
class SystemClock : public Clock {
 public:
  explicit SystemClock(double rate = 1, absl::Time anchor = absl::UnixEpoch());
  absl::Time Now() const override;
  double rate() const { return rate_; }
  // What this clock read when the wall clock read `wall` (a time another
  // system stamped, such as a media server's).
  absl::Time FromWall(absl::Time wall) const;

 private:
  double rate_;
  absl::Time anchor_;
};

// Adds clock.rate and clock.anchor to a service's schema.
void AddClockKeys(server::ConfigSchema& schema);
// clock.anchor defaults to the start of the current UTC day; an anchor that is
// not an RFC 3339 time is INVALID_ARGUMENT naming the key.
absl::StatusOr<SystemClock> ClockFromConfig(const server::Config& config);

// A clock tests set by hand.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1798761600));  // 2027-01-01
  absl::Time Now() const override;
  void Set(absl::Time now);
  void Advance(absl::Duration by);

 private:
  mutable absl::Mutex mutex_;
  absl::Time now_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline
