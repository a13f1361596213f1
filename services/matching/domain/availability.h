#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "helpline/catalog/v1/catalog.pb.h"

namespace helpline::matching {

// OK if [start, start + minutes) lies inside one of the expert's windows on
// that day in the expert's time zone (a dated exception replaces the
// weekday's windows); FAILED_PRECONDITION saying why not otherwise. Reads
// tzdata: for fronts, not for decide.
absl::Status CheckInAvailability(const catalog::v1::Availability& availability, absl::Time start,
                                 int minutes);

}  // namespace helpline::matching
