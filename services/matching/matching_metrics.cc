#include "services/matching/matching_metrics.h"

namespace helpline::matching {

MatchingMetrics::MatchingMetrics(prometheus::Registry& registry, double clock_rate)
    : clock_rate_(clock_rate),
      waiting_(prometheus::BuildGauge()
                   .Name("helpline_matching_waiting_requests")
                   .Help("Help requests in line: waiting, with no offer out")
                   .Register(registry)
                   .Add({})),
      offer_wait_(prometheus::BuildHistogram()
                      .Name("helpline_matching_offer_wait_seconds")
                      .Help("From a request being offerable (asked, back from an offer, or "
                            "nobody free at the last look) to its offer being written")
                      .Register(registry)
                      .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2,
                                                                       5, 10, 30, 60})),
      time_to_match_(prometheus::BuildHistogram()
                         .Name("helpline_matching_time_to_match_seconds")
                         .Help("From asking for help to an expert accepting")
                         .Register(registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{
                                      1, 2, 5, 10, 20, 30, 60, 120, 300, 600})) {}

void MatchingMetrics::SetWaitingRequests(size_t requests) {
  waiting_.Set(static_cast<double>(requests));
}

void MatchingMetrics::ObserveOfferWait(absl::Duration real_time) {
  offer_wait_.Observe(absl::ToDoubleSeconds(real_time));
}

void MatchingMetrics::ObserveTimeToMatch(absl::Duration service_time) {
  time_to_match_.Observe(absl::ToDoubleSeconds(service_time) / clock_rate_);
}

}  // namespace helpline::matching
