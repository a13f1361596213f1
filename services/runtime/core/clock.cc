#include "services/runtime/core/clock.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace helpline {

SystemClock::SystemClock(double rate, absl::Time anchor) : rate_(rate), anchor_(anchor) {}

absl::Time SystemClock::Now() const { return FromWall(absl::Now()); }

absl::Time SystemClock::FromWall(absl::Time wall) const {
  if (rate_ == 1) return wall;
  return anchor_ + (wall - anchor_) * rate_;
}

void AddClockKeys(server::ConfigSchema& schema) {
  schema
      .Double("clock.rate", 1, 1, 100000,
              "how fast service time runs: 60 makes a billed minute pass in a real second "
              "(demos and end-to-end tests only)")
      .String("clock.anchor", "",
              "RFC 3339 instant from which a sped-up clock counts; processes that must agree "
              "share it (default: start of the current UTC day)");
}

absl::StatusOr<SystemClock> ClockFromConfig(const server::Config& config) {
  double rate = config.GetDouble("clock.rate");
  const std::string& text = config.GetString("clock.anchor");
  if (!text.empty()) {
    absl::Time anchor;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, text, &anchor, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config key 'clock.anchor': '", text, "' is not an RFC 3339 time: ", error));
    }
    return SystemClock(rate, anchor);
  }
  absl::CivilDay today = absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  return SystemClock(rate, absl::FromCivil(today, absl::UTCTimeZone()));
}

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mutex_);
  return now_;
}

void FakeClock::Set(absl::Time now) {
  absl::MutexLock lock(&mutex_);
  now_ = now;
}

void FakeClock::Advance(absl::Duration by) {
  absl::MutexLock lock(&mutex_);
  now_ += by;
}

}  // namespace helpline
