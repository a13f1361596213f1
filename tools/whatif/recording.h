#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/matching/domain/candidate_pool.h"

// What the what-if simulation (docs/whatif.md) takes from the recorded
// streams: the inputs it replays (catalog, presence, reviews, help requests,
// bookings), the behaviour it models (how each expert answered offers, how
// long calls lasted, who asked for refunds and when), the policy in force,
// and the figures as they really came out. Pure: events in, no I/O.
namespace helpline::whatif {

// Requests asked (bookings starting) in [since, until) are simulated; what
// came before only shapes the state they meet.
struct Window {
  absl::Time since = absl::InfinitePast();
  absl::Time until = absl::InfiniteFuture();
  bool Contains(absl::Time at) const { return at >= since && at < until; }
};

struct RecordedRequest {
  std::string id;  // the help request's aggregate id
  std::string session_id;  // once matched
  absl::Time asked_at;
  matching::CandidateQuery query;
  absl::Time expires_at;
  // When the person gave up, if they did before a match or the expiry.
  std::optional<absl::Time> cancelled_at;
  // As it happened.
  enum class Ending { kWaiting, kMatched, kExpired, kCancelled } ending = Ending::kWaiting;
  absl::Duration waited;  // ask to match, when matched
  int64_t offers = 0;
};

struct RecordedBooking {
  std::string id;  // also the session's id
  std::string expert_id;
  absl::Time start;
  catalog::v1::PriceTerms price;
  int max_minutes = 0;
  std::string sponsor_program_id;
  std::string category_id;  // from sessions' SessionCreated
  bool cancelled = false;
  bool late_cancellation_by_person = false;
  absl::Time cancelled_at;
};

// How an expert answered the offers they were given (offers withdrawn
// because the request ended are not counted).
struct AnswerHistory {
  int64_t offers = 0;
  int64_t accepted = 0;
  int64_t declined = 0;  // the rest ran out unanswered
  std::vector<absl::Duration> answer_times;  // accepted or declined
};

// Anything that changes the candidate pool, at its recorded time.
struct PoolInput {
  absl::Time at;
  // Ties at one instant go in this order, whatever order the topics'
  // partitions were read in.
  std::string aggregate_id;
  int64_t version = 0;
  // kOfferOutcome: an offer made, declined, run out or accepted, which the
  // simulation applies only before its window (it makes its own inside).
  enum class Kind { kCatalog, kPresence, kReview, kOfferOutcome } kind = Kind::kCatalog;
  catalog::v1::CatalogEvent catalog;
  matching::v1::MatchingEvent matching;  // kPresence, kOfferOutcome
  std::string expert_id;  // kReview
  int stars = 0;          // kReview
};

// The money of one recorded session.
struct RecordedSessionMoney {
  std::string expert_id;
  std::string category_id;
  bool booked = false;  // payments charges bookings the rate of no category
  std::string sponsor_program_id;
  int32_t commission_bps = -1;  // -1: no hold recorded
  int64_t amount_minor = 0;     // captured
  int64_t fee_minor = 0;
  int64_t expert_share_minor = 0;
  bool captured = false;
  bool refunded = false;
  std::optional<absl::Time> started_at;  // matched, or the booking's start
  std::optional<absl::Time> ended_at;
  std::optional<absl::Time> refund_asked_at;
  absl::Duration billable;
};

class Recording {
 public:
  void Apply(const catalog::v1::CatalogEvent& event);
  void Apply(const matching::v1::MatchingEvent& event);
  void Apply(const sessions::v1::SessionsEvent& event);
  void Apply(const payments::v1::PaymentsEvent& event);
  // Orders what was applied by time; call once, after the last Apply.
  void Finish();

  const std::vector<PoolInput>& pool_inputs() const { return pool_inputs_; }
  // Oldest first.
  const std::vector<RecordedRequest>& requests() const { return requests_; }
  // By start.
  const std::vector<RecordedBooking>& bookings() const { return bookings_; }
  const std::map<std::string, AnswerHistory>& answers() const { return answers_; }
  const std::map<std::string, RecordedSessionMoney>& sessions() const { return sessions_; }
  // The experts each request was offered to, in order.
  const std::map<std::string, std::vector<std::string>>& offers_by_request() const {
    return offers_by_request_;
  }
  // Every expert who was ever online or offered something: the population
  // whose shares the report compares.
  std::vector<std::string> Experts() const;
  // The offer window in force: the most common offer length.
  std::optional<absl::Duration> OfferWindow() const;
  const std::string& currency() const { return currency_; }
  int64_t events() const { return events_; }
  absl::Time latest() const { return latest_; }

 private:
  void Saw(absl::Time at);
  RecordedRequest* Request(const std::string& id);

  std::vector<PoolInput> pool_inputs_;
  std::vector<RecordedRequest> requests_;
  absl::flat_hash_map<std::string, size_t> request_index_;
  std::vector<RecordedBooking> bookings_;
  absl::flat_hash_map<std::string, size_t> booking_index_;
  struct OpenOffer {
    std::string expert_id;
    absl::Time at;
  };
  absl::flat_hash_map<std::string, OpenOffer> open_offers_;
  std::map<std::string, AnswerHistory> answers_;
  std::map<std::string, std::vector<std::string>> offers_by_request_;
  std::map<int64_t, int64_t> offer_lengths_ms_;  // length -> offers
  std::map<std::string, RecordedSessionMoney> sessions_;
  std::string currency_;
  int64_t events_ = 0;
  absl::Time latest_ = absl::InfinitePast();
};

}  // namespace helpline::whatif
