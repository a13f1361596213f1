#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/matching/domain/candidate_pool.h"
#include "services/payments/domain/reactions.h"
#include "tools/whatif/recording.h"

// The what-if simulation (docs/whatif.md): the recorded help requests,
// bookings, presence and catalog replayed on a simulated clock through
// matching's own ranking (CandidatePool), sessions' own billing (BillFor) and
// payments' own commission split, under a policy; experts answer offers and
// calls last as the recording says they tend to. Pure and deterministic: the
// same recording, policy and seed give the same outcome.
namespace helpline::whatif {

// What an operator can change.
struct Policy {
  matching::RankingOptions ranking;
  absl::Duration offer_window = absl::Seconds(30);
  payments::CommissionOptions commission;
  // Every per-minute price's minimum minutes; 0 keeps each expert's own.
  int minimum_minutes = 0;
  absl::Duration refund_window = absl::Hours(72);
};

// The policy the recording was made under, as far as the events tell: the
// offer window and the commission rates they carry; the rest (ranking
// weights, refund window) comes from `defaults`.
Policy RecordedPolicy(const Recording& recording, Policy defaults);

// Reads "rating=0.3,acceptance=0.2,price=0.2,fairness=0.3" into the ranking
// weights (any subset); INVALID_ARGUMENT naming what is wrong otherwise.
absl::Status ParseRankingWeights(absl::string_view text, matching::RankingOptions& ranking);

struct ExpertOutcome {
  int64_t offers = 0;
  int64_t sessions = 0;
  int64_t earnings_minor = 0;  // their share, net of refunds
};

// What came out: of the recording as it happened, or of a simulation.
struct Outcome {
  int64_t requests = 0;
  int64_t matched = 0;
  int64_t expired = 0;
  int64_t cancelled = 0;
  int64_t unresolved = 0;  // still waiting when the recording ends
  int64_t offers = 0;
  std::vector<absl::Duration> waits;  // ask to match, of the matched
  int64_t sessions = 0;               // billed: matches and bookings
  int64_t revenue_minor = 0;          // billed, before refunds
  int64_t refunds = 0;
  int64_t refunded_minor = 0;
  int64_t commission_minor = 0;  // net of refunds
  int64_t expert_earnings_minor = 0;
  std::map<std::string, ExpertOutcome> experts;
};

// The figures as they happened, for the requests and bookings in `window`.
Outcome RecordedOutcome(const Recording& recording, const Window& window);

// The recording replayed under `policy`.
Outcome Simulate(const Recording& recording, const Policy& policy, const Window& window,
                 uint64_t seed);

// What the simulation assumes, worded for the report, with the figures it
// took from `recording`.
std::vector<std::string> Assumptions(const Recording& recording);

// Gini coefficient of `values` (0: all equal; near 1: one has everything).
double Gini(std::vector<double> values);
// Nearest-rank percentile (0 < p <= 100) of `values`; zero when empty.
absl::Duration Percentile(std::vector<absl::Duration> values, double p);

}  // namespace helpline::whatif
