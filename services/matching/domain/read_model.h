#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/matching/domain/bookings_view.h"
#include "services/matching/domain/calls_in_progress.h"
#include "services/matching/domain/candidate_pool.h"
#include "services/matching/domain/help_request_lines.h"
#include "services/runtime/eventsourcing/projection.h"

namespace helpline::matching {

// A waiting help request, as the dispatcher sees it.
struct WaitingRequest {
  std::string help_request_id;
  CandidateQuery query;
  absl::Time asked_at;  // service time
  // Offers it had (declined or expired) before waiting again.
  int offers_made = 0;
};

// Matching's read model: its projection of catalog (the candidate pool),
// its own events (help requests and their lines, bookings, presence),
// sessions' (calls in progress), and what the dispatcher and the streams
// wait on. Thread-safe: one lock over its parts; Apply runs on the feeds'
// threads, queries on any thread.
class MatchingReadModel : public es::TypedProjection<v1::MatchingEvent> {
 public:
  // Help requests that ended are forgotten `closed_retention` after they did.
  explicit MatchingReadModel(RankingOptions ranking = {},
                             absl::Duration closed_retention = absl::Hours(24 * 7));

  // Matching's own events.
  void Apply(const v1::MatchingEvent& event) override;
  // Catalog's events, through catalog_projection().
  es::TypedProjection<catalog::v1::CatalogEvent>& catalog_projection() {
    return catalog_projection_;
  }
  // Sessions' events (reviews, no-shows), through sessions_projection().
  es::TypedProjection<sessions::v1::SessionsEvent>& sessions_projection() {
    return sessions_projection_;
  }

  // The request with its position in line; nullopt if unknown.
  std::optional<v1::HelpRequest> Request(const std::string& help_request_id) const;
  // How many of `person_id`'s help requests are open (waiting or offered).
  int OpenRequestsOf(const std::string& person_id) const;
  std::vector<std::string> OpenRequestIdsOf(const std::string& person_id) const;
  // The help request an offer belongs to (any offer ever made).
  std::optional<std::string> RequestOfOffer(const std::string& offer_id) const;
  // The expert's open offer, if any.
  std::optional<v1::Offer> OpenOffer(const std::string& expert_id) const;

  // Requests without an open offer, longest waiting first.
  std::vector<WaitingRequest> WaitingRequests() const;
  // The best experts to offer a waiting request to now (Rank, minus experts
  // with an open offer and those the request was offered to before).
  std::vector<Candidate> CandidatesFor(const WaitingRequest& request, absl::Time now,
                                       size_t limit) const;
  // Reservations to release or keep, since the last call.
  std::vector<ReservationChange> TakeReservationChanges();

  std::optional<v1::Booking> Booking(const std::string& booking_id) const;
  // `user_id`'s bookings as person and as expert, soonest first; upcoming
  // confirmed ones only unless `all`.
  std::vector<v1::Booking> BookingsOf(const std::string& user_id, absl::Time now, bool all) const;
  // Someone has joined the session (a booking's id is its session's), and it has not ended.
  bool SessionUnderWay(const std::string& session_id) const;

  // Catalog facts for the fronts' checks.
  bool ActiveCategory(const std::string& category_id) const;
  std::optional<ExpertEntry> Expert(const std::string& expert_id) const;
  std::optional<SponsorProgramEntry> Program(const std::string& program_id) const;
  bool Covers(const SponsorProgramEntry& program, const ExpertEntry& expert) const;
  size_t available_experts() const;

  // A counter that grows with every applied change; WaitForChange returns
  // once it is above `seen` or after `timeout`, with its value.
  uint64_t changes() const;
  uint64_t WaitForChange(uint64_t seen, absl::Duration timeout) const;

  // What a change touched, for the streams that watch one thing: a help
  // request (RequestKey), the line of a category, where positions move when
  // a request ahead leaves (LineKey), an expert's open offer (OffersKey).
  static std::string RequestKey(const std::string& help_request_id) {
    return HelpRequestLines::RequestKey(help_request_id);
  }
  static std::string LineKey(const std::string& category_id) {
    return HelpRequestLines::LineKey(category_id);
  }
  static std::string OffersKey(const std::string& expert_id) {
    return HelpRequestLines::OffersKey(expert_id);
  }
  // Called after each applied event that touched any of those keys, on the
  // feed's thread and with no lock held. Set before the feeds start.
  void OnChange(std::function<void(const std::vector<std::string>& keys)> listener);

  // Runs `rank` with the pool under the lock (benchmarks, tests).
  template <class F>
  auto WithPool(F rank) const {
    absl::ReaderMutexLock lock(&mutex_);
    return rank(pool_);
  }

 private:
  class CatalogFeed : public es::TypedProjection<catalog::v1::CatalogEvent> {
   public:
    explicit CatalogFeed(MatchingReadModel& model) : model_(model) {}
    void Apply(const catalog::v1::CatalogEvent& event) override;

   private:
    MatchingReadModel& model_;
  };
  class SessionsFeed : public es::TypedProjection<sessions::v1::SessionsEvent> {
   public:
    explicit SessionsFeed(MatchingReadModel& model) : model_(model) {}
    void Apply(const sessions::v1::SessionsEvent& event) override;

   private:
    MatchingReadModel& model_;
  };

  void Changed();
  // Changed, and tells the listener the keys touched since the last call.
  void ChangedAndTell(std::vector<std::string> touched) ABSL_LOCKS_EXCLUDED(mutex_);

  CatalogFeed catalog_projection_;
  SessionsFeed sessions_projection_;
  mutable absl::Mutex mutex_;
  CandidatePool pool_ ABSL_GUARDED_BY(mutex_);
  HelpRequestLines requests_ ABSL_GUARDED_BY(mutex_);
  BookingsView bookings_ ABSL_GUARDED_BY(mutex_);
  CallsInProgress calls_ ABSL_GUARDED_BY(mutex_);
  std::vector<ReservationChange> reservation_changes_ ABSL_GUARDED_BY(mutex_);
  std::function<void(const std::vector<std::string>&)> on_change_;
  // Apart from mutex_, so that waiting streams cost nothing to its users.
  mutable absl::Mutex changes_mutex_;
  mutable absl::CondVar changed_;
  uint64_t changes_ ABSL_GUARDED_BY(changes_mutex_) = 0;
};

}  // namespace helpline::matching
