#pragma once

#include <deque>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/matching/v1/matching.pb.h"

// Part of matching's read model (read_model.h), not thread-safe on its own:
// the help requests, their categories' lines, the open offers, and what
// each change touched.
namespace helpline::matching {

// An offer whose Redis reservation is to be released (declined, expired,
// withdrawn) or kept a while longer (the match was made).
struct ReservationChange {
  std::string expert_id;
  std::string offer_id;
  bool matched = false;
};

class HelpRequestLines {
 public:
  // Help requests that ended are forgotten `closed_retention` after they did.
  explicit HelpRequestLines(absl::Duration closed_retention)
      : closed_retention_(closed_retention) {}

  // What a change touched, for the streams that watch one thing: a help
  // request, the line of a category, where positions move when a request
  // ahead leaves, an expert's open offer.
  static std::string RequestKey(const std::string& help_request_id);
  static std::string LineKey(const std::string& category_id);
  static std::string OffersKey(const std::string& expert_id);

  // An event of help request `id`. Adds the keys it touched to `touched`,
  // and the reservations it releases or keeps to `reservations`.
  void Apply(const std::string& id, const v1::MatchingEvent& event,
             std::vector<std::string>& touched, std::vector<ReservationChange>& reservations);

  // The request with its position in line; nullopt if unknown.
  std::optional<v1::HelpRequest> Request(const std::string& id) const;
  int OpenRequestsOf(const std::string& person_id) const;
  std::vector<std::string> OpenRequestIdsOf(const std::string& person_id) const;
  std::optional<std::string> RequestOfOffer(const std::string& offer_id) const;
  std::optional<v1::Offer> OpenOffer(const std::string& expert_id) const;
  bool HasOpenOffer(const std::string& expert_id) const { return open_offers_.contains(expert_id); }
  // Requests without an open offer, longest waiting first.
  std::vector<const v1::HelpRequest*> Waiting() const;
  // The experts request `id` was offered to, or null if it is not known.
  const std::vector<std::string>* OfferedExperts(const std::string& id) const;
  // The offer request `id` was matched by ("" if none).
  std::string MatchOfferOf(const std::string& id) const;

 private:
  struct RequestRecord {
    v1::HelpRequest view;  // without its position
    std::vector<std::string> offered_experts;
    std::vector<std::string> offer_ids;
    std::string match_offer_id;
  };
  using Line = std::set<std::pair<absl::Time, std::string>>;

  void CloseOffer(RequestRecord& record, bool matched, std::vector<std::string>& touched,
                  std::vector<ReservationChange>& reservations);
  void LeaveLine(const RequestRecord& record, absl::Time closed_at,
                 std::vector<std::string>& touched);
  void ForgetClosedBefore(absl::Time cutoff);

  const absl::Duration closed_retention_;
  absl::flat_hash_map<std::string, RequestRecord> requests_;
  // Open requests (waiting or offered) per category, by opening time.
  absl::flat_hash_map<std::string, Line> lines_;
  // Requests waiting for an offer, by opening time.
  Line waiting_;
  // Requests that ended, by when they did.
  std::deque<std::pair<absl::Time, std::string>> closed_;
  absl::flat_hash_map<std::string, std::string> offer_requests_;
  absl::flat_hash_map<std::string, std::string> open_offers_;
  absl::flat_hash_map<std::string, int> open_requests_of_;
};

}  // namespace helpline::matching
