#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "services/matching/domain/pricing.h"

// Matching's own projection of catalog (published experts, the category
// tree, sponsor programs) joined with presence and each expert's offer
// history, and the choice of whom to offer a help request to. Pure: no I/O,
// no clock (time comes in), no locking (the read model guards it).
namespace helpline::matching {

struct RankingOptions {
  // Ratings are pulled towards `rating_prior_mean` as if `rating_prior_weight`
  // reviews of that many stars came first (a Bayesian average).
  double rating_prior_mean = 4.0;
  double rating_prior_weight = 5;
  // Acceptance likewise: as if `acceptance_prior_weight` offers were answered
  // at `acceptance_prior`.
  double acceptance_prior = 0.8;
  double acceptance_prior_weight = 5;
  // Offers in this window count against an expert's fairness term.
  absl::Duration fairness_window = absl::Hours(1);
  // The score: a weighted sum of terms that each lie in [0, 1].
  double rating_weight = 0.4;
  double acceptance_weight = 0.25;
  double price_weight = 0.15;
  double fairness_weight = 0.2;
};

struct CandidateQuery {
  std::string person_id;
  std::string category_id;
  // Any BCP 47 tag; the language (primary subtag) must match.
  std::string language;
  v1::Budget budget;
  int max_minutes = 30;
  std::string sponsor_program_id;
  // Experts not to offer to (declined this request, have another offer).
  std::function<bool(const std::string& expert_id)> excluded;
};

struct Candidate {
  std::string expert_id;
  double score = 0;
  catalog::v1::PriceTerms price;
  SessionTerms terms;
};

struct SponsorProgramEntry {
  std::string sponsor_id;
  catalog::v1::SponsorProgramTerms terms;
  bool paused = false;
};

struct ExpertEntry {
  std::string id;
  bool published = false;
  bool has_live = false;
  std::vector<int> categories;
  // Primary language subtags, as the pool's numbers for them.
  std::vector<int> languages;
  catalog::v1::PriceTerms price;
  PriceFigures price_figures;
  catalog::v1::Availability availability;
  int64_t reviews = 0;
  int64_t stars = 0;
  int64_t offers_answered = 0;
  int64_t offers_accepted = 0;
  int64_t no_shows = 0;
  std::deque<absl::Time> recent_offers;
  // Online with status AVAILABLE (the presence events say so).
  bool available = false;
  size_t available_slot = 0;
};

class CandidatePool {
 public:
  explicit CandidatePool(RankingOptions options = {});

  void ApplyCatalog(const catalog::v1::CatalogEvent& event);
  // Presence and offer outcomes from matching's own events.
  void ApplyMatching(const v1::MatchingEvent& event);
  void RecordReview(const std::string& expert_id, int stars);
  // The expert did not join a matched session: counts as an offer not taken.
  void RecordNoShow(const std::string& expert_id);

  // The best `limit` experts for `query` at `now`, best first (ties by id):
  // published, in the category or below it, speaking the language, within
  // the budget (or covered by the sponsor program), available, not excluded.
  std::vector<Candidate> Rank(const CandidateQuery& query, absl::Time now, size_t limit) const;
  // The score Rank gives, for an expert that fits with `budget_fit` left.
  double Score(const ExpertEntry& expert, double budget_fit, absl::Time now) const;

  bool ActiveCategory(const std::string& category_id) const;
  const ExpertEntry* Expert(const std::string& expert_id) const;
  const SponsorProgramEntry* Program(const std::string& program_id) const;
  static bool InEffect(const SponsorProgramEntry& program, absl::Time now);
  bool Covers(const SponsorProgramEntry& program, const ExpertEntry& expert) const;
  size_t available_count() const { return available_.size(); }
  template <class F>
  void ForEachAvailable(F visit) const {
    for (const AvailableRow& row : available_) visit(experts_[row.expert]);
  }

 private:
  int CategoryNumber(const std::string& category_id);
  int LanguageNumber(const std::string& primary_language);
  bool Under(int category, int ancestor) const;
  bool InCategory(const ExpertEntry& expert, int category) const;
  ExpertEntry& Entry(const std::string& expert_id);
  void SetLive(ExpertEntry& expert, const catalog::v1::ProfileContent& live);
  void SetAvailable(ExpertEntry& expert, bool available);

  // What Rank checks first for every available expert, packed so that the
  // pass over thousands of them stays in cache.
  struct AvailableRow {
    uint32_t expert = 0;
    bool eligible = false;  // published, with a live profile
    uint8_t category_count = 0;
    uint8_t language_count = 0;
    int16_t categories[5] = {};
    int16_t languages[10] = {};
  };
  void RefreshRow(const ExpertEntry& expert);

  const RankingOptions options_;
  std::vector<ExpertEntry> experts_;
  absl::flat_hash_map<std::string, size_t> expert_index_;
  std::vector<AvailableRow> available_;
  absl::flat_hash_map<std::string, int> category_numbers_;
  absl::flat_hash_map<std::string, int> language_numbers_;
  std::vector<int> parents_;  // -1: top level
  std::vector<bool> retired_;
  absl::flat_hash_map<std::string, SponsorProgramEntry> programs_;
};

// "de-AT" -> "de".
std::string PrimaryLanguage(std::string_view tag);

}  // namespace helpline::matching
