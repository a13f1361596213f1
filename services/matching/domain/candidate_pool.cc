#include "services/matching/domain/candidate_pool.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::matching {
namespace {

using catalog::v1::CatalogEvent;

// Deeper than any real tree; stops a walk on a (corrupt) cycle.
constexpr int kMaxDepth = 64;

}  // namespace

std::string PrimaryLanguage(std::string_view tag) {
  return absl::AsciiStrToLower(std::string(tag.substr(0, tag.find('-'))));
}

CandidatePool::CandidatePool(RankingOptions options) : options_(options) {}

int CandidatePool::CategoryNumber(const std::string& category_id) {
  auto [it, added] = category_numbers_.try_emplace(category_id, parents_.size());
  if (added) {
    parents_.push_back(-1);
    retired_.push_back(false);
  }
  return it->second;
}

int CandidatePool::LanguageNumber(const std::string& primary_language) {
  return language_numbers_.try_emplace(primary_language, language_numbers_.size()).first->second;
}

bool CandidatePool::Under(int category, int ancestor) const {
  for (int depth = 0; category >= 0 && depth < kMaxDepth; ++depth) {
    if (category == ancestor) return true;
    category = parents_[category];
  }
  return false;
}

bool CandidatePool::InCategory(const ExpertEntry& expert, int category) const {
  for (int own : expert.categories) {
    if (Under(own, category)) return true;
  }
  return false;
}

ExpertEntry& CandidatePool::Entry(const std::string& expert_id) {
  auto [it, added] = expert_index_.try_emplace(expert_id, experts_.size());
  if (added) {
    experts_.emplace_back();
    experts_.back().id = expert_id;
  }
  return experts_[it->second];
}

void CandidatePool::SetLive(ExpertEntry& expert, const catalog::v1::ProfileContent& live) {
  expert.has_live = true;
  expert.categories.clear();
  for (const std::string& id : live.category_ids()) expert.categories.push_back(CategoryNumber(id));
  expert.languages.clear();
  for (const std::string& tag : live.languages()) {
    int language = LanguageNumber(PrimaryLanguage(tag));
    if (std::find(expert.languages.begin(), expert.languages.end(), language) ==
        expert.languages.end()) {
      expert.languages.push_back(language);
    }
  }
  expert.price = live.price();
  expert.price_figures = PriceFigures::Of(live.price());
  expert.availability = live.availability();
  RefreshRow(expert);
}

void CandidatePool::SetAvailable(ExpertEntry& expert, bool available) {
  if (expert.available == available) return;
  expert.available = available;
  if (available) {
    expert.available_slot = available_.size();
    available_.emplace_back();
    RefreshRow(expert);
  } else {
    AvailableRow last = available_.back();
    available_[expert.available_slot] = last;
    experts_[last.expert].available_slot = expert.available_slot;
    available_.pop_back();
  }
}

void CandidatePool::RefreshRow(const ExpertEntry& expert) {
  if (!expert.available) return;
  AvailableRow& row = available_[expert.available_slot];
  row.expert = static_cast<uint32_t>(expert_index_.at(expert.id));
  row.eligible = expert.published && expert.has_live;
  row.category_count = 0;
  for (int category : expert.categories) {
    if (row.category_count == std::size(row.categories)) break;
    row.categories[row.category_count++] = static_cast<int16_t>(category);
  }
  row.language_count = 0;
  for (int language : expert.languages) {
    if (row.language_count == std::size(row.languages)) break;
    row.languages[row.language_count++] = static_cast<int16_t>(language);
  }
}

void CandidatePool::ApplyCatalog(const CatalogEvent& event) {
  const std::string& id = event.meta().aggregate_id();
  switch (event.body_case()) {
    case CatalogEvent::kExpertApproved:
      SetLive(Entry(id), event.expert_approved().live());
      break;
    case CatalogEvent::kProfileChangeApproved:
      SetLive(Entry(id), event.profile_change_approved().live());
      break;
    case CatalogEvent::kLiveTermsChanged:
      SetLive(Entry(id), event.live_terms_changed().live());
      break;
    case CatalogEvent::kProfilePublished:
    case CatalogEvent::kProfileUnpublished: {
      ExpertEntry& expert = Entry(id);
      expert.published = event.has_profile_published();
      RefreshRow(expert);
      break;
    }
    case CatalogEvent::kCategoryCreated: {
      int number = CategoryNumber(event.category_created().category_id());
      const std::string& parent = event.category_created().parent_id();
      parents_[number] = parent.empty() ? -1 : CategoryNumber(parent);
      break;
    }
    case CatalogEvent::kCategoryMoved: {
      int number = CategoryNumber(event.category_moved().category_id());
      const std::string& parent = event.category_moved().parent_id();
      parents_[number] = parent.empty() ? -1 : CategoryNumber(parent);
      break;
    }
    case CatalogEvent::kCategoryRetired:
      retired_[CategoryNumber(event.category_retired().category_id())] = true;
      break;
    case CatalogEvent::kSponsorProgramCreated: {
      SponsorProgramEntry& program = programs_[id];
      program.sponsor_id = event.sponsor_program_created().sponsor_id();
      program.terms = event.sponsor_program_created().terms();
      break;
    }
    case CatalogEvent::kSponsorProgramUpdated:
      programs_[id].terms = event.sponsor_program_updated().terms();
      break;
    case CatalogEvent::kSponsorProgramPaused:
      programs_[id].paused = true;
      break;
    case CatalogEvent::kSponsorProgramResumed:
      programs_[id].paused = false;
      break;
    default:
      break;
  }
}

void CandidatePool::ApplyMatching(const v1::MatchingEvent& event) {
  switch (event.body_case()) {
    case v1::MatchingEvent::kExpertWentOnline:
      SetAvailable(Entry(event.expert_went_online().expert_id()),
                   event.expert_went_online().status() == v1::PRESENCE_STATUS_AVAILABLE);
      break;
    case v1::MatchingEvent::kExpertStatusChanged:
      SetAvailable(Entry(event.expert_status_changed().expert_id()),
                   event.expert_status_changed().status() == v1::PRESENCE_STATUS_AVAILABLE);
      break;
    case v1::MatchingEvent::kExpertWentOffline:
      SetAvailable(Entry(event.expert_went_offline().expert_id()), false);
      break;
    case v1::MatchingEvent::kExpertOffered: {
      ExpertEntry& expert = Entry(event.expert_offered().expert_id());
      absl::Time at = FromProtoTime(event.meta().occurred_at());
      expert.recent_offers.push_back(at);
      while (!expert.recent_offers.empty() &&
             expert.recent_offers.front() < at - options_.fairness_window) {
        expert.recent_offers.pop_front();
      }
      break;
    }
    case v1::MatchingEvent::kOfferDeclined:
      ++Entry(event.offer_declined().expert_id()).offers_answered;
      break;
    case v1::MatchingEvent::kOfferExpired:
      ++Entry(event.offer_expired().expert_id()).offers_answered;
      break;
    case v1::MatchingEvent::kMatchMade: {
      ExpertEntry& expert = Entry(event.match_made().match().expert_id());
      ++expert.offers_answered;
      ++expert.offers_accepted;
      break;
    }
    default:
      break;
  }
}

void CandidatePool::RecordReview(const std::string& expert_id, int stars) {
  ExpertEntry& expert = Entry(expert_id);
  ++expert.reviews;
  expert.stars += stars;
}

void CandidatePool::RecordNoShow(const std::string& expert_id) {
  ExpertEntry& expert = Entry(expert_id);
  ++expert.no_shows;
  ++expert.offers_answered;
}

double CandidatePool::Score(const ExpertEntry& expert, double budget_fit, absl::Time now) const {
  double rating = (options_.rating_prior_mean * options_.rating_prior_weight +
                   static_cast<double>(expert.stars)) /
                  (options_.rating_prior_weight + static_cast<double>(expert.reviews));
  double acceptance = (options_.acceptance_prior * options_.acceptance_prior_weight +
                       static_cast<double>(expert.offers_accepted)) /
                      (options_.acceptance_prior_weight +
                       static_cast<double>(expert.offers_answered));
  int recent = 0;
  for (auto it = expert.recent_offers.rbegin();
       it != expert.recent_offers.rend() && *it > now - options_.fairness_window; ++it) {
    ++recent;
  }
  double fairness = 1.0 / (1.0 + recent);
  return options_.rating_weight * (rating / 5.0) + options_.acceptance_weight * acceptance +
         options_.price_weight * budget_fit + options_.fairness_weight * fairness;
}

std::vector<Candidate> CandidatePool::Rank(const CandidateQuery& query, absl::Time now,
                                           size_t limit) const {
  std::vector<Candidate> best;
  auto category = category_numbers_.find(query.category_id);
  if (category == category_numbers_.end() || limit == 0) return best;
  const SponsorProgramEntry* program = nullptr;
  if (!query.sponsor_program_id.empty()) {
    program = Program(query.sponsor_program_id);
    if (program == nullptr || !InEffect(*program, now)) return best;
  }
  auto language = language_numbers_.find(PrimaryLanguage(query.language));
  if (language == language_numbers_.end()) return best;
  const int sponsor_cap = program == nullptr ? 0 : program->terms.max_minutes_per_session();
  const BudgetFigures budget = BudgetFigures::Of(query.budget);
  struct Scored {
    double score;
    size_t index;
  };
  // Ordered best first; as a heap, the worst kept is at the front.
  auto better = [&](const Scored& a, const Scored& b) {
    if (a.score != b.score) return a.score > b.score;
    return experts_[a.index].id < experts_[b.index].id;
  };
  // The requested category and every category below it.
  std::vector<bool> wanted(parents_.size());
  for (size_t number = 0; number < parents_.size(); ++number) {
    wanted[number] = Under(static_cast<int>(number), category->second);
  }
  const int16_t wanted_language = static_cast<int16_t>(language->second);
  std::vector<Scored> heap;
  for (const AvailableRow& row : available_) {
    if (!row.eligible) continue;
    bool in_category = false;
    for (int c = 0; c < row.category_count && !in_category; ++c) {
      in_category = wanted[row.categories[c]];
    }
    if (!in_category) continue;
    bool speaks = false;
    for (int l = 0; l < row.language_count && !speaks; ++l) {
      speaks = row.languages[l] == wanted_language;
    }
    if (!speaks) continue;
    const size_t index = row.expert;
    const ExpertEntry& expert = experts_[index];
    if (expert.id == query.person_id) continue;
    double fit = 1.0;
    if (program != nullptr) {
      if (!Covers(*program, expert)) continue;
    } else {
      std::optional<double> budget_fit =
          budget.Fit(expert.price_figures, expert.price_figures.MaxMinutes(query.max_minutes));
      if (!budget_fit) continue;
      fit = *budget_fit;
    }
    if (query.excluded && query.excluded(expert.id)) continue;
    Scored scored{Score(expert, fit, now), index};
    if (heap.size() < limit) {
      heap.push_back(scored);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(scored, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = scored;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better);
  for (const Scored& scored : heap) {
    const ExpertEntry& expert = experts_[scored.index];
    best.push_back({expert.id, scored.score, expert.price,
                    TermsFor(expert.price, query.max_minutes, sponsor_cap)});
  }
  return best;
}

bool CandidatePool::ActiveCategory(const std::string& category_id) const {
  auto found = category_numbers_.find(category_id);
  return found != category_numbers_.end() && !retired_[found->second];
}

const ExpertEntry* CandidatePool::Expert(const std::string& expert_id) const {
  auto found = expert_index_.find(expert_id);
  return found == expert_index_.end() ? nullptr : &experts_[found->second];
}

const SponsorProgramEntry* CandidatePool::Program(const std::string& program_id) const {
  auto found = programs_.find(program_id);
  return found == programs_.end() ? nullptr : &found->second;
}

bool CandidatePool::InEffect(const SponsorProgramEntry& program, absl::Time now) {
  if (program.paused || !program.terms.has_active_from()) return false;
  if (now < FromProtoTime(program.terms.active_from())) return false;
  return !program.terms.has_active_until() || now < FromProtoTime(program.terms.active_until());
}

bool CandidatePool::Covers(const SponsorProgramEntry& program, const ExpertEntry& expert) const {
  for (const std::string& id : program.terms.expert_ids()) {
    if (id == expert.id) return true;
  }
  for (const std::string& id : program.terms.category_ids()) {
    auto found = category_numbers_.find(id);
    if (found != category_numbers_.end() && InCategory(expert, found->second)) return true;
  }
  return false;
}

}  // namespace helpline::matching
