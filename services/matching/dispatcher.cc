#include "services/matching/dispatcher.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "services/matching/domain/matching_domain.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/server/log.h"

namespace helpline::matching {

Dispatcher::Dispatcher(DispatcherOptions options, MatchingReadModel& read_model,
                       Presence& presence, es::Writer& front, const Clock& clock,
                       MatchingMetrics* metrics)
    : options_(options),
      read_model_(read_model),
      presence_(presence),
      front_(front),
      clock_(clock),
      metrics_(metrics),
      started_at_(clock.Now()) {}

absl::Duration Dispatcher::Real(absl::Duration service_time) const {
  return service_time / options_.clock_rate;
}

void Dispatcher::SettleReservations() {
  for (const ReservationChange& change : read_model_.TakeReservationChanges()) {
    absl::Status done = change.matched
                            ? presence_.Keep(change.expert_id, change.offer_id,
                                             Real(options_.match_hold))
                            : presence_.Release(change.expert_id, change.offer_id);
    // Not fatal: the reservation expires by itself at the end of its window.
    if (!done.ok()) {
      log::Warn("reservation not settled", {{"expert_id", change.expert_id},
                                             {"error", done.ToString()}});
    }
  }
}

absl::StatusOr<Dispatcher::Offered> Dispatcher::Offer(const WaitingRequest& request) {
  absl::Time now = clock_.Now();
  for (const Candidate& candidate :
       read_model_.CandidatesFor(request, now, options_.candidates_per_try)) {
    std::string offer_id = ids::NewUuidV7();
    // A little longer than the offer, which ends when its timer fires.
    absl::StatusOr<bool> reserved = presence_.Reserve(
        candidate.expert_id, offer_id, Real(options_.offer_window) + absl::Seconds(2));
    if (!reserved.ok()) return reserved.status();
    if (!*reserved) continue;
    v1::MatchingCommand command;
    v1::OfferToExpert& offer = *command.mutable_offer_to_expert();
    offer.set_offer_id(offer_id);
    offer.set_expert_id(candidate.expert_id);
    *offer.mutable_price() = candidate.price;
    offer.set_max_minutes(candidate.terms.max_minutes);
    *offer.mutable_max_amount() = candidate.terms.max_amount;
    *offer.mutable_window() = ToProtoDuration(options_.offer_window);
    // Waits for the read model too, so the next pass sees the offer.
    absl::Status outcome = front_.Write(
        command, es::CommandOrigin::ByHelpline(HelpRequestAggregate(request.help_request_id),
                                               ids::DerivedCommandId(offer_id, "offer"),
                                               "matching.dispatcher"));
    if (outcome.ok()) return Offered::kYes;
    // Taken by another dispatcher, cancelled or expired meanwhile: free the expert.
    presence_.Release(candidate.expert_id, offer_id).IgnoreError();
    if (outcome.code() == absl::StatusCode::kFailedPrecondition) return Offered::kNobodyFree;
    log::Warn("offer not sent", {{"help_request_id", request.help_request_id},
                                 {"error", outcome.ToString()}});
    return Offered::kNotWritten;
  }
  return Offered::kNobodyFree;
}

int Dispatcher::RunOnce() {
  SettleReservations();
  int offers = 0;
  const absl::Time pass = clock_.Now();
  std::vector<WaitingRequest> waiting = read_model_.WaitingRequests();
  absl::flat_hash_map<std::string, absl::Time> offerable_since;
  // A request not seen before waits since it was asked (its way through the
  // processor and the read model included), or since this dispatcher
  // started; one back from an offer, since it is seen waiting again.
  auto first_seen = [&](const WaitingRequest& request) {
    return request.offers_made > 0 ? pass : std::max(request.asked_at, started_at_);
  };
  for (size_t i = 0; i < waiting.size(); ++i) {
    const std::string& id = waiting[i].help_request_id;
    auto since = offerable_since_.find(id);
    const absl::Time from = since != offerable_since_.end() ? since->second : first_seen(waiting[i]);
    absl::StatusOr<Offered> offered = Offer(waiting[i]);
    if (!offered.ok()) {
      if (!presence_down_) {
        log::Warn("presence unavailable; no offers until it is back",
                  {{"error", offered.status().ToString()}});
      }
      presence_down_ = true;
      // Not offered for want of presence: their wait goes on.
      for (size_t rest = i; rest < waiting.size(); ++rest) {
        const std::string& rest_id = waiting[rest].help_request_id;
        auto rest_since = offerable_since_.find(rest_id);
        offerable_since[rest_id] = rest_since != offerable_since_.end() ? rest_since->second
                                                                        : first_seen(waiting[rest]);
      }
      break;
    }
    if (presence_down_) log::Info("presence is back; offering again");
    presence_down_ = false;
    switch (*offered) {
      case Offered::kYes:
        ++offers;
        // Another replica's clock may run a little ahead of this one's.
        if (metrics_ != nullptr) {
          metrics_->ObserveOfferWait(Real(std::max(absl::ZeroDuration(), clock_.Now() - from)));
        }
        break;
      case Offered::kNobodyFree:  // in line, not kept waiting by us
        offerable_since[id] = clock_.Now();
        break;
      case Offered::kNotWritten:  // our failure: its wait goes on
        offerable_since[id] = from;
        break;
    }
  }
  offerable_since_ = std::move(offerable_since);
  if (metrics_ != nullptr) metrics_->SetWaitingRequests(waiting.size() - offers);
  return offers;
}

absl::Status Dispatcher::Start() {
  started_at_ = clock_.Now();  // after the service's replay: not the requests' wait
  thread_ = std::thread([this] {
    uint64_t seen = 0;
    while (!stopping_.load()) {
      uint64_t now_seen = read_model_.WaitForChange(seen, options_.idle_pass);
      if (stopping_.load()) return;
      seen = now_seen;
      RunOnce();
    }
  });
  return absl::OkStatus();
}

void Dispatcher::Stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace helpline::matching
