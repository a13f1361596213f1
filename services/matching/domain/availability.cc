#include "services/matching/domain/availability.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace helpline::matching {

absl::Status CheckInAvailability(const catalog::v1::Availability& availability, absl::Time start,
                                 int minutes) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(availability.time_zone(), &zone)) {
    return absl::FailedPreconditionError("the expert's time zone is not known here");
  }
  absl::TimeZone::CivilInfo from = zone.At(start);
  absl::TimeZone::CivilInfo to = zone.At(start + absl::Minutes(minutes));
  absl::CivilDay day = absl::CivilDay(from.cs);
  int64_t first = absl::CivilMinute(from.cs) - absl::CivilMinute(day);
  int64_t last = absl::CivilMinute(to.cs) - absl::CivilMinute(day);
  std::vector<const catalog::v1::TimeRange*> windows;
  bool exception = false;
  for (const catalog::v1::AvailabilityException& dated : availability.exceptions()) {
    if (dated.date().year() == day.year() && dated.date().month() == day.month() &&
        dated.date().day() == day.day()) {
      exception = true;
      for (const catalog::v1::TimeRange& range : dated.times()) windows.push_back(&range);
    }
  }
  if (!exception) {
    // absl: Monday .. Sunday; the proto: 1 (Monday) .. 7 (Sunday).
    int weekday = static_cast<int>(absl::GetWeekday(day)) + 1;
    for (const catalog::v1::WeeklyWindow& window : availability.weekly()) {
      if (static_cast<int>(window.weekday()) == weekday) windows.push_back(&window.time());
    }
  }
  for (const catalog::v1::TimeRange* range : windows) {
    if (range->start_minute() <= first && last <= range->end_minute()) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "start: %04d-%02d-%02d %02d:%02d for %d minutes (%s) is outside the expert's availability",
      day.year(), day.month(), day.day(), from.cs.hour(), from.cs.minute(), minutes,
      availability.time_zone()));
}

}  // namespace helpline::matching
