#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "helpline/payments/v1/events.pb.h"

// How each sponsor program's money goes (issue: sponsor burn-down), folded
// from payments' events alone: the sponsor's budget paid in, what open
// holds reserve from it, what sessions spent (refunds given back), and when
// the budget runs out at the last 7 days' pace. For `helpline-sponsors` and
// payments' metrics. Pure: the time is the events'.
namespace helpline::payments {

struct SponsorProgramBurn {
  std::string program_id;
  std::string sponsor_id;
  std::string currency;
  // The sponsor's budget, shared by its programs: paid in, and what is left
  // after every program's spending and reservations.
  int64_t budget_funded_minor = 0;
  int64_t budget_left_minor = 0;
  // This program's open holds, its captures minus refunds, its paid sessions.
  int64_t reserved_minor = 0;
  int64_t spent_minor = 0;
  int64_t sessions_paid = 0;
  // The sponsor's spending over the 7 days before `now`, per day.
  int64_t pace_minor_per_day = 0;
  // When the budget left runs out at that pace; none without spending.
  std::optional<absl::Time> runs_out_at;
};

class SponsorBurnDown {
 public:
  void Apply(const v1::PaymentsEvent& event);
  // Every program, by program id; `now` is the end of the 7-day window.
  std::vector<SponsorProgramBurn> Report(absl::Time now) const;
  // The time of the newest event applied.
  absl::Time latest() const { return latest_; }

 private:
  struct Sponsor {
    std::string currency;
    int64_t funded_minor = 0;
    int64_t spent_minor = 0;
    int64_t reserved_minor = 0;
    // (time, amount spent; a refund negative), oldest first, pruned to 7 days.
    std::deque<std::pair<absl::Time, int64_t>> spending;
  };
  struct Program {
    std::string sponsor_id;
    int64_t reserved_minor = 0;
    int64_t spent_minor = 0;
    int64_t sessions_paid = 0;
  };
  struct Hold {
    std::string program_id;
    int64_t reserved_minor = 0;
  };

  void Release(const std::string& session_id);
  void Spend(Sponsor& sponsor, absl::Time at, int64_t amount);

  std::map<std::string, Sponsor> sponsors_;
  std::map<std::string, Program> programs_;
  std::map<std::string, Hold> open_holds_;  // by session
  std::map<std::string, std::string> paid_sessions_;  // session -> program
  absl::Time latest_ = absl::InfinitePast();
};

}  // namespace helpline::payments
