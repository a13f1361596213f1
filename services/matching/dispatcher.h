#pragma once

#include <atomic>
#include <cstddef>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/container/flat_hash_map.h"
#include "services/matching/domain/read_model.h"
#include "services/matching/matching_metrics.h"
#include "services/matching/presence.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/front.h"

namespace helpline::matching {

struct DispatcherOptions {
  // How long an expert has to answer an offer (service time).
  absl::Duration offer_window = absl::Seconds(30);
  // How long a matched expert stays reserved, for the expert app to say "busy".
  absl::Duration match_hold = absl::Minutes(2);
  // Service time per real time (clock.rate): Redis expiries are real time.
  double clock_rate = 1;
  // Candidates tried per request and pass when the best are reserved.
  size_t candidates_per_try = 10;
  // A pass at least this often even when nothing changed (expiries in Redis).
  absl::Duration idle_pass = absl::Milliseconds(500);
};

// Outside decide (docs/architecture.md §5): takes waiting help requests from the read
// model oldest first, picks the best free expert, reserves the expert in
// Redis for the offer window, then sends OfferToExpert, which the help
// request accepts only while it still waits. Also releases reservations of
// offers that ended. Every replica runs one; Redis and decide keep them
// from offering twice.
class Dispatcher {
 public:
  Dispatcher(DispatcherOptions options, MatchingReadModel& read_model, Presence& presence,
             es::Writer& front, const Clock& clock, MatchingMetrics* metrics = nullptr);

  ~Dispatcher() { Stop(); }

  // One pass; the number of offers made.
  int RunOnce();
  // A pass after every change of the read model (and at least every
  // idle_pass), on the dispatcher's own thread, until Stop.
  absl::Status Start();
  void Stop();

 private:
  absl::Duration Real(absl::Duration service_time) const;
  void SettleReservations();
  enum class Offered { kYes, kNobodyFree, kNotWritten };
  // Offers `request` to the best expert that can be reserved; an error if
  // Redis is down.
  absl::StatusOr<Offered> Offer(const WaitingRequest& request);

  const DispatcherOptions options_;
  MatchingReadModel& read_model_;
  Presence& presence_;
  es::Writer& front_;
  const Clock& clock_;
  MatchingMetrics* const metrics_;
  // Since when each waiting request could have been offered (service
  // time): asked, back from an offer, or last found with nobody free.
  absl::flat_hash_map<std::string, absl::Time> offerable_since_;
  absl::Time started_at_;
  bool presence_down_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace helpline::matching
