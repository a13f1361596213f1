#include "services/catalog/domain/expert_index.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "services/catalog/domain/search_text.h"
#include "services/catalog/domain/validation.h"

namespace helpline::catalog {
namespace {

// Documents longer than this many tokens count each occurrence a bit less.
constexpr double kReferenceLength = 60;

double Idf(size_t documents, size_t frequency) {
  double n = static_cast<double>(documents);
  double df = static_cast<double>(frequency);
  return std::log(1.0 + (n - df + 0.5) / (df + 0.5));
}

// The weight of a token in a document (BM25's saturation, with a fixed
// reference length so a document's weights do not depend on the others).
float Saturated(double occurrences, double length) {
  double norm = 1.2 * (0.25 + 0.75 * length / kReferenceLength);
  return static_cast<float>(occurrences * 2.2 / (occurrences + norm));
}

std::optional<float> WeightOf(const IndexedExpert& expert, int32_t token) {
  auto found = std::lower_bound(
      expert.tokens.begin(), expert.tokens.end(), token,
      [](const std::pair<int32_t, float>& entry, int32_t id) { return entry.first < id; });
  if (found == expert.tokens.end() || found->first != token) return std::nullopt;
  return found->second;
}

bool IsAfter(double key, const std::string& id, const SearchCursor& cursor) {
  return key < cursor.key || (key == cursor.key && id > cursor.expert_id);
}

void Erase(std::vector<const IndexedExpert*>& list, const IndexedExpert* expert) {
  auto found = std::find(list.begin(), list.end(), expert);
  if (found != list.end()) {
    *found = list.back();
    list.pop_back();
  }
}

// Keeps the `limit` + 1 best matches in order; says whether there were more
// than `limit`.
std::vector<ExpertMatch> Best(std::vector<ExpertMatch> matches, int limit, bool* more) {
  auto before = [](const ExpertMatch& a, const ExpertMatch& b) {
    return a.key > b.key || (a.key == b.key && a.expert->expert_id < b.expert->expert_id);
  };
  size_t keep = std::min(matches.size(), static_cast<size_t>(limit));
  *more = matches.size() > keep;
  std::partial_sort(matches.begin(), matches.begin() + static_cast<long>(keep), matches.end(),
                    before);
  matches.resize(keep);
  return matches;
}

double SortKey(v1::SearchSort sort, const IndexedExpert& expert, double relevance) {
  double price = static_cast<double>(expert.price_per_minute);
  switch (sort) {
    case v1::SEARCH_SORT_RATING:
      return expert.rating;
    case v1::SEARCH_SORT_PRICE_LOW_TO_HIGH:
      return -price;
    case v1::SEARCH_SORT_PRICE_HIGH_TO_LOW:
      return price;
    default:
      return relevance + kRatingWeightInRelevance * expert.rating;
  }
}

}  // namespace

int32_t ExpertIndex::TokenId(const std::string& token) {
  auto [entry, added] = dictionary_.try_emplace(token, static_cast<int32_t>(postings_.size()));
  if (added) postings_.emplace_back();
  return entry->second;
}

void ExpertIndex::Put(const std::string& expert_id,
                      std::shared_ptr<const v1::ProfileContent> live, std::vector<int> categories,
                      double rating, bool online) {
  auto existing = experts_.find(expert_id);
  if (existing != experts_.end()) {
    Unlink(existing->second);
    experts_.erase(existing);
  }
  IndexedExpert& expert = experts_[expert_id];
  expert.expert_id = expert_id;
  expert.categories = std::move(categories);
  expert.price_per_minute = PricePerMinute(live->price());
  expert.pricing = live->price().has_fixed() ? v1::PRICING_KIND_FIXED : v1::PRICING_KIND_PER_MINUTE;
  expert.rating = rating;
  expert.online = online;

  absl::flat_hash_map<std::string, double> occurrences;
  double length = 0;
  auto add = [&](const std::string& text, double weight) {
    for (std::string& token : IndexTokens(text)) {
      occurrences[token] += weight;
      length += 1;
    }
  };
  add(live->public_name(), 3);
  add(live->headline(), 3);
  for (const std::string& skill : live->skills()) add(skill, 2);
  add(live->bio(), 1);
  expert.tokens.reserve(occurrences.size());
  for (const auto& [token, count] : occurrences) {
    expert.tokens.emplace_back(TokenId(token), Saturated(count, length));
  }
  std::sort(expert.tokens.begin(), expert.tokens.end());
  expert.live = std::move(live);
  Link(expert);
}

void ExpertIndex::Link(const IndexedExpert& expert) {
  for (const auto& [token, weight] : expert.tokens) postings_[token].push_back(&expert);
  for (int category : expert.categories) by_category_[category].push_back(&expert);
  by_rating_.insert({expert.rating, expert.expert_id, &expert});
  double price = static_cast<double>(expert.price_per_minute);
  by_price_ascending_.insert({-price, expert.expert_id, &expert});
  by_price_descending_.insert({price, expert.expert_id, &expert});
}

void ExpertIndex::Unlink(const IndexedExpert& expert) {
  for (const auto& [token, weight] : expert.tokens) Erase(postings_[token], &expert);
  for (int category : expert.categories) Erase(by_category_[category], &expert);
  by_rating_.erase({expert.rating, expert.expert_id, &expert});
  double price = static_cast<double>(expert.price_per_minute);
  by_price_ascending_.erase({-price, expert.expert_id, &expert});
  by_price_descending_.erase({price, expert.expert_id, &expert});
}

void ExpertIndex::Remove(const std::string& expert_id) {
  auto existing = experts_.find(expert_id);
  if (existing == experts_.end()) return;
  Unlink(existing->second);
  experts_.erase(existing);
}

void ExpertIndex::SetRating(const std::string& expert_id, double rating) {
  auto existing = experts_.find(expert_id);
  if (existing == experts_.end()) return;
  IndexedExpert& expert = existing->second;
  by_rating_.erase({expert.rating, expert.expert_id, &expert});
  expert.rating = rating;
  by_rating_.insert({expert.rating, expert.expert_id, &expert});
}

void ExpertIndex::SetOnline(const std::string& expert_id, bool online) {
  auto existing = experts_.find(expert_id);
  if (existing != experts_.end()) existing->second.online = online;
}

const IndexedExpert* ExpertIndex::Find(const std::string& expert_id) const {
  auto existing = experts_.find(expert_id);
  return existing == experts_.end() ? nullptr : &existing->second;
}

const ExpertIndex::Order& ExpertIndex::OrderFor(v1::SearchSort sort) const {
  switch (sort) {
    case v1::SEARCH_SORT_PRICE_LOW_TO_HIGH:
      return by_price_ascending_;
    case v1::SEARCH_SORT_PRICE_HIGH_TO_LOW:
      return by_price_descending_;
    default:
      return by_rating_;
  }
}

std::vector<ExpertMatch> ExpertIndex::Search(const ExpertQuery& query, bool* more) const {
  *more = false;
  if (query.limit <= 0) return {};
  if (!query.terms.empty()) return SearchText(query, more);
  if (query.categories != nullptr) {
    size_t in_categories = 0;
    for (int category : *query.categories) {
      auto postings = by_category_.find(category);
      if (postings != by_category_.end()) in_categories += postings->second.size();
    }
    // A small part of everyone: start from the categories, not the order.
    if (in_categories * 4 < experts_.size()) {
      absl::flat_hash_set<const IndexedExpert*> seen;
      std::vector<const IndexedExpert*> candidates;
      for (int category : *query.categories) {
        auto postings = by_category_.find(category);
        if (postings == by_category_.end()) continue;
        for (const IndexedExpert* expert : postings->second) {
          if (seen.insert(expert).second) candidates.push_back(expert);
        }
      }
      return Collect(query, candidates, more);
    }
  }
  return Walk(query, more);
}


std::vector<ExpertMatch> ExpertIndex::Walk(const ExpertQuery& query, bool* more) const {
  const Order& order = OrderFor(query.sort);
  auto at = order.begin();
  if (query.after) at = order.upper_bound({query.after->key, query.after->expert_id, nullptr});
  std::vector<ExpertMatch> matches;
  for (; at != order.end(); ++at) {
    if (query.filter && !query.filter(*at->expert)) continue;
    if (static_cast<int>(matches.size()) == query.limit) {
      *more = true;
      break;
    }
    matches.push_back({at->expert, 0, at->key});
  }
  return matches;
}

std::vector<ExpertMatch> ExpertIndex::Collect(const ExpertQuery& query,
                                              const std::vector<const IndexedExpert*>& candidates,
                                              bool* more) const {
  std::vector<ExpertMatch> matches;
  for (const IndexedExpert* expert : candidates) {
    if (query.filter && !query.filter(*expert)) continue;
    double key = SortKey(query.sort, *expert, 0);
    if (query.after && !IsAfter(key, expert->expert_id, *query.after)) continue;
    matches.push_back({expert, 0, key});
  }
  return Best(std::move(matches), query.limit, more);
}

std::vector<ExpertMatch> ExpertIndex::SearchText(const ExpertQuery& query, bool* more) const {
  const size_t documents = experts_.size();
  struct Term {
    int32_t id;
    double idf;
  };
  std::vector<Term> exact;
  for (size_t i = 0; i + 1 < query.terms.size(); ++i) {
    auto found = dictionary_.find(query.terms[i]);
    if (found == dictionary_.end() || postings_[found->second].empty()) return {};
    exact.push_back({found->second, Idf(documents, postings_[found->second].size())});
  }
  const std::string& prefix = query.terms.back();
  absl::flat_hash_map<int32_t, double> prefix_idf;
  for (auto it = dictionary_.lower_bound(prefix);
       it != dictionary_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (!postings_[it->second].empty()) {
      prefix_idf[it->second] = Idf(documents, postings_[it->second].size());
    }
  }
  if (prefix_idf.empty()) return {};

  std::vector<const IndexedExpert*> union_of_prefixes;
  const std::vector<const IndexedExpert*>* driver = nullptr;
  for (const Term& term : exact) {
    if (driver == nullptr || postings_[term.id].size() < driver->size()) {
      driver = &postings_[term.id];
    }
  }
  if (driver == nullptr) {
    if (prefix_idf.size() == 1) {
      driver = &postings_[prefix_idf.begin()->first];
    } else {
      absl::flat_hash_set<const IndexedExpert*> seen;
      for (const auto& [token, idf] : prefix_idf) {
        for (const IndexedExpert* expert : postings_[token]) {
          if (seen.insert(expert).second) union_of_prefixes.push_back(expert);
        }
      }
      driver = &union_of_prefixes;
    }
  }

  std::vector<ExpertMatch> matches;
  for (const IndexedExpert* expert : *driver) {
    double score = 0;
    bool all = true;
    for (const Term& term : exact) {
      std::optional<float> weight = WeightOf(*expert, term.id);
      if (!weight) {
        all = false;
        break;
      }
      score += term.idf * *weight;
    }
    if (!all) continue;
    double best_prefix = -1;
    if (prefix_idf.size() <= 4) {
      for (const auto& [token, idf] : prefix_idf) {
        if (std::optional<float> weight = WeightOf(*expert, token)) {
          best_prefix = std::max(best_prefix, idf * *weight);
        }
      }
    } else {
      for (const auto& [token, weight] : expert->tokens) {
        auto idf = prefix_idf.find(token);
        if (idf != prefix_idf.end()) best_prefix = std::max(best_prefix, idf->second * weight);
      }
    }
    if (best_prefix < 0) continue;
    score += best_prefix;
    if (query.filter && !query.filter(*expert)) continue;
    double key = SortKey(query.sort, *expert, score);
    if (query.after && !IsAfter(key, expert->expert_id, *query.after)) continue;
    matches.push_back({expert, score, key});
  }
  return Best(std::move(matches), query.limit, more);
}

}  // namespace helpline::catalog
