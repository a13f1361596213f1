#pragma once

#include <cstddef>

#include "absl/time/time.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace helpline::matching {

// Help now as people feel it: the line's length
// (helpline_matching_waiting_requests), how long an offerable request waits
// for its offer (helpline_matching_offer_wait_seconds: from being asked, or
// back from an offer, or the dispatcher's last look that found nobody free
// for it, to the offer being written) and from asking to an expert's
// acceptance
// (helpline_matching_time_to_match_seconds). Real seconds, whatever the
// service clock's rate.
class MatchingMetrics {
 public:
  MatchingMetrics(prometheus::Registry& registry, double clock_rate);

  void SetWaitingRequests(size_t requests);
  void ObserveOfferWait(absl::Duration real_time);
  void ObserveTimeToMatch(absl::Duration service_time);

 private:
  const double clock_rate_;
  prometheus::Gauge& waiting_;
  prometheus::Histogram& offer_wait_;
  prometheus::Histogram& time_to_match_;
};

}  // namespace helpline::matching
