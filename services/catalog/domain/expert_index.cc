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


uint64_t IdPrefix(std::string_view id) {
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix = (prefix << 8) | (i < id.size() ? static_cast<unsigned char>(id[i]) : 0);
  }
  return prefix;
}

template <class Entry, class Same>
void Erase(std::vector<Entry>& list, Same same) {
  auto found = std::find_if(list.begin(), list.end(), same);
  if (found != list.end()) {
    *found = list.back();
    list.pop_back();
  }
}

}  // namespace

void NumberSet::Add(int number) {
  size_t word = static_cast<size_t>(number) / 64;
  if (word >= bits_.size()) bits_.resize(word + 1);
  bits_[word] |= uint64_t{1} << (number % 64);
  empty_ = false;
}

int32_t ExpertIndex::TokenId(const std::string& token) {
  auto [entry, added] = dictionary_.try_emplace(token, static_cast<int32_t>(postings_.size()));
  if (added) postings_.emplace_back();
  return entry->second;
}

void ExpertIndex::Put(const std::string& expert_id,
                      std::shared_ptr<const v1::ProfileContent> live, std::vector<int> categories,
                      double rating, bool online) {
  Remove(expert_id);
  IndexedExpert& expert = experts_[expert_id];
  expert.expert_id = expert_id;
  expert.categories = std::move(categories);
  expert.rating = rating;
  expert.online = online;
  if (free_rows_.empty()) {
    expert.row = static_cast<uint32_t>(rows_.size());
    rows_.emplace_back();
  } else {
    expert.row = free_rows_.back();
    free_rows_.pop_back();
  }
  Row& row = rows_[expert.row];
  row = Row();
  row.expert = &expert;
  row.id_prefix = IdPrefix(expert_id);
  row.rating = rating;
  row.online = online;
  row.price_per_minute = static_cast<int32_t>(PricePerMinute(live->price()));
  row.pricing = live->price().has_fixed() ? v1::PRICING_KIND_FIXED : v1::PRICING_KIND_PER_MINUTE;
  for (int category : expert.categories) {
    if (row.category_count == kMaxCategoriesPerExpert) break;
    row.categories[row.category_count++] = static_cast<uint16_t>(category);
  }
  for (const std::string& tag : live->languages()) {
    if (row.language_count == kMaxLanguagesPerExpert) break;
    auto [entry, added] = languages_.try_emplace(tag, static_cast<uint16_t>(languages_.size()));
    row.languages[row.language_count++] = entry->second;
  }

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
  for (const auto& [token, weight] : expert.tokens) {
    std::vector<Posting>& list = postings_[token];
    // Kept in row order, for intersecting by galloping.
    auto at = std::lower_bound(list.begin(), list.end(), expert.row,
                               [](const Posting& posting, uint32_t row) { return posting.row < row; });
    list.insert(at, {expert.row, weight});
  }
  for (int category : expert.categories) by_category_[category].push_back(expert.row);
  const Row& row = rows_[expert.row];
  by_rating_.insert({row.rating, expert.expert_id, expert.row});
  double price = static_cast<double>(row.price_per_minute);
  by_price_ascending_.insert({-price, expert.expert_id, expert.row});
  by_price_descending_.insert({price, expert.expert_id, expert.row});
}

void ExpertIndex::Unlink(const IndexedExpert& expert) {
  for (const auto& [token, weight] : expert.tokens) {
    std::vector<Posting>& list = postings_[token];
    auto at = std::lower_bound(list.begin(), list.end(), expert.row,
                               [](const Posting& posting, uint32_t row) { return posting.row < row; });
    if (at != list.end() && at->row == expert.row) list.erase(at);
  }
  for (int category : expert.categories) {
    Erase(by_category_[category], [&](uint32_t row) { return row == expert.row; });
  }
  const Row& row = rows_[expert.row];
  by_rating_.erase({row.rating, expert.expert_id, expert.row});
  double price = static_cast<double>(row.price_per_minute);
  by_price_ascending_.erase({-price, expert.expert_id, expert.row});
  by_price_descending_.erase({price, expert.expert_id, expert.row});
}

void ExpertIndex::Remove(const std::string& expert_id) {
  auto existing = experts_.find(expert_id);
  if (existing == experts_.end()) return;
  Unlink(existing->second);
  rows_[existing->second.row] = Row();
  free_rows_.push_back(existing->second.row);
  experts_.erase(existing);
}

void ExpertIndex::SetRating(const std::string& expert_id, double rating) {
  auto existing = experts_.find(expert_id);
  if (existing == experts_.end()) return;
  IndexedExpert& expert = existing->second;
  Row& row = rows_[expert.row];
  by_rating_.erase({row.rating, expert.expert_id, expert.row});
  expert.rating = rating;
  row.rating = rating;
  by_rating_.insert({row.rating, expert.expert_id, expert.row});
}

void ExpertIndex::SetOnline(const std::string& expert_id, bool online) {
  auto existing = experts_.find(expert_id);
  if (existing == experts_.end()) return;
  existing->second.online = online;
  rows_[existing->second.row].online = online;
}

const IndexedExpert* ExpertIndex::Find(const std::string& expert_id) const {
  auto existing = experts_.find(expert_id);
  return existing == experts_.end() ? nullptr : &existing->second;
}

std::vector<uint16_t> ExpertIndex::LanguagesCovered(const std::string& language) const {
  std::vector<uint16_t> covered;
  for (auto it = languages_.lower_bound(language);
       it != languages_.end() && absl::StartsWith(it->first, language); ++it) {
    if (it->first.size() == language.size() || it->first[language.size()] == '-') {
      covered.push_back(it->second);
    }
  }
  return covered;
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

bool ExpertIndex::Passes(const Row& row, uint32_t index, const ResolvedFilter& resolved) const {
  const ExpertFilter& filter = *resolved.filter;
  if (filter.categories != nullptr &&
      std::none_of(row.categories, row.categories + row.category_count,
                   [&](uint16_t number) { return filter.categories->Contains(number); })) {
    return false;
  }
  if (filter.languages != nullptr &&
      std::none_of(row.languages, row.languages + row.language_count, [&](uint16_t number) {
        return std::find(filter.languages->begin(), filter.languages->end(), number) !=
               filter.languages->end();
      })) {
    return false;
  }
  if (filter.pricing != v1::PRICING_KIND_UNSPECIFIED && row.pricing != filter.pricing) {
    return false;
  }
  if (filter.min_price_per_minute && row.price_per_minute < *filter.min_price_per_minute) {
    return false;
  }
  if (filter.max_price_per_minute && row.price_per_minute > *filter.max_price_per_minute) {
    return false;
  }
  if (row.rating < filter.min_rating) return false;
  if (filter.online_only && !row.online) return false;
  if (filter.sponsored_only) {
    bool by_category =
        filter.sponsored_categories != nullptr &&
        std::any_of(row.categories, row.categories + row.category_count, [&](uint16_t number) {
          return filter.sponsored_categories->Contains(number);
        });
    if (!by_category && !resolved.sponsored_rows.contains(index)) return false;
  }
  return true;
}

double ExpertIndex::SortKey(v1::SearchSort sort, const Row& row, double relevance) const {
  double price = static_cast<double>(row.price_per_minute);
  switch (sort) {
    case v1::SEARCH_SORT_RATING:
      return row.rating;
    case v1::SEARCH_SORT_PRICE_LOW_TO_HIGH:
      return -price;
    case v1::SEARCH_SORT_PRICE_HIGH_TO_LOW:
      return price;
    default:
      return relevance + kRatingWeightInRelevance * row.rating;
  }
}

bool ExpertIndex::Before(const Candidate& a, const Candidate& b) const {
  if (a.key != b.key) return a.key > b.key;
  const Row& row_a = rows_[a.row];
  const Row& row_b = rows_[b.row];
  if (row_a.id_prefix != row_b.id_prefix) return row_a.id_prefix < row_b.id_prefix;
  return row_a.expert->expert_id < row_b.expert->expert_id;
}

bool ExpertIndex::IsAfter(const Candidate& candidate, const SearchCursor& cursor,
                          uint64_t cursor_prefix) const {
  if (candidate.key != cursor.key) return candidate.key < cursor.key;
  const Row& row = rows_[candidate.row];
  if (row.id_prefix != cursor_prefix) return row.id_prefix > cursor_prefix;
  return row.expert->expert_id > cursor.expert_id;
}

std::vector<ExpertMatch> ExpertIndex::Best(std::vector<Candidate> candidates, int limit,
                                           bool* more) const {
  size_t keep = std::min(candidates.size(), static_cast<size_t>(limit));
  *more = candidates.size() > keep;
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<long>(keep),
                    candidates.end(),
                    [this](const Candidate& a, const Candidate& b) { return Before(a, b); });
  std::vector<ExpertMatch> matches;
  matches.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    matches.push_back({rows_[candidates[i].row].expert, candidates[i].relevance,
                       candidates[i].key});
  }
  return matches;
}

std::vector<ExpertMatch> ExpertIndex::Search(const ExpertQuery& query, bool* more) const {
  *more = false;
  if (query.limit <= 0) return {};
  ResolvedFilter filter{&query.filter, {}};
  if (query.filter.sponsored_only && query.filter.sponsored_experts != nullptr) {
    for (const std::string& id : *query.filter.sponsored_experts) {
      if (const IndexedExpert* expert = Find(id)) filter.sponsored_rows.insert(expert->row);
    }
  }
  if (!query.terms.empty()) return SearchText(query, filter, more);
  if (!query.category_list.empty()) {
    size_t in_categories = 0;
    for (int category : query.category_list) {
      auto postings = by_category_.find(category);
      if (postings != by_category_.end()) in_categories += postings->second.size();
    }
    // A small part of everyone: start from the categories, not the order.
    if (in_categories * 4 < experts_.size()) {
      std::vector<uint32_t> rows;
      rows.reserve(in_categories);
      for (int category : query.category_list) {
        auto postings = by_category_.find(category);
        if (postings == by_category_.end()) continue;
        rows.insert(rows.end(), postings->second.begin(), postings->second.end());
      }
      // An expert in two of the categories once.
      if (query.category_list.size() > 1) {
        std::sort(rows.begin(), rows.end());
        rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
      }
      return Collect(query, filter, rows, more);
    }
  }
  return Walk(query, filter, more);
}

std::vector<ExpertMatch> ExpertIndex::Walk(const ExpertQuery& query, const ResolvedFilter& filter,
                                           bool* more) const {
  const Order& order = OrderFor(query.sort);
  auto at = order.begin();
  if (query.after) at = order.upper_bound({query.after->key, query.after->expert_id, 0});
  std::vector<ExpertMatch> matches;
  for (; at != order.end(); ++at) {
    if (!Passes(rows_[at->row], at->row, filter)) continue;
    if (static_cast<int>(matches.size()) == query.limit) {
      *more = true;
      break;
    }
    matches.push_back({rows_[at->row].expert, 0, at->key});
  }
  return matches;
}

std::vector<ExpertMatch> ExpertIndex::Collect(const ExpertQuery& query,
                                              const ResolvedFilter& filter,
                                              const std::vector<uint32_t>& rows,
                                              bool* more) const {
  const uint64_t cursor_prefix = query.after ? IdPrefix(query.after->expert_id) : 0;
  std::vector<Candidate> candidates;
  for (uint32_t index : rows) {
    const Row& row = rows_[index];
    if (!Passes(row, index, filter)) continue;
    Candidate candidate{index, 0, SortKey(query.sort, row, 0)};
    if (query.after && !IsAfter(candidate, *query.after, cursor_prefix)) continue;
    candidates.push_back(candidate);
  }
  return Best(std::move(candidates), query.limit, more);
}

std::vector<ExpertMatch> ExpertIndex::SearchText(const ExpertQuery& query,
                                                 const ResolvedFilter& filter, bool* more) const {
  const size_t documents = experts_.size();
  // A term's postings in row order, read front to back as rows increase.
  struct TermList {
    const Posting* at;
    const Posting* end;
    double idf;
    size_t size() const { return static_cast<size_t>(end - at); }
    // Moves to the first posting at or after `row` (galloping); its weight
    // times the idf if it is `row`.
    std::optional<double> Seek(uint32_t row) {
      size_t step = 1;
      while (at + step < end && at[step].row < row) {
        at += step;
        step *= 2;
      }
      at = std::lower_bound(at, std::min(at + step + 1, end), row,
                            [](const Posting& posting, uint32_t r) { return posting.row < r; });
      if (at == end || at->row != row) return std::nullopt;
      return idf * at->weight;
    }
  };
  auto list_of = [&](int32_t token) {
    const std::vector<Posting>& postings = postings_[token];
    return TermList{postings.data(), postings.data() + postings.size(),
                    Idf(documents, postings.size())};
  };

  std::vector<TermList> lists;
  for (size_t i = 0; i + 1 < query.terms.size(); ++i) {
    auto found = dictionary_.find(query.terms[i]);
    if (found == dictionary_.end() || postings_[found->second].empty()) return {};
    lists.push_back(list_of(found->second));
  }
  // The last word as a prefix: one list of every word it stands for, each
  // expert with the best of them (idf included, so the list's idf is 1).
  const std::string& prefix = query.terms.back();
  std::vector<int32_t> prefix_tokens;
  for (auto it = dictionary_.lower_bound(prefix);
       it != dictionary_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (!postings_[it->second].empty()) prefix_tokens.push_back(it->second);
  }
  if (prefix_tokens.empty()) return {};
  std::vector<Posting> merged;
  if (prefix_tokens.size() == 1) {
    lists.push_back(list_of(prefix_tokens[0]));
  } else {
    for (int32_t token : prefix_tokens) {
      double idf = Idf(documents, postings_[token].size());
      for (const Posting& posting : postings_[token]) {
        merged.push_back({posting.row, static_cast<float>(idf * posting.weight)});
      }
    }
    std::sort(merged.begin(), merged.end(), [](const Posting& a, const Posting& b) {
      return a.row < b.row || (a.row == b.row && a.weight > b.weight);
    });
    merged.erase(std::unique(merged.begin(), merged.end(),
                             [](const Posting& a, const Posting& b) { return a.row == b.row; }),
                 merged.end());
    lists.push_back({merged.data(), merged.data() + merged.size(), 1.0});
  }
  // The shortest list leads; the others are galloped through.
  std::sort(lists.begin(), lists.end(),
            [](const TermList& a, const TermList& b) { return a.size() < b.size(); });

  const uint64_t cursor_prefix = query.after ? IdPrefix(query.after->expert_id) : 0;
  std::vector<Candidate> candidates;
  TermList& lead = lists[0];
  for (const Posting* posting = lead.at; posting != lead.end; ++posting) {
    double score = lead.idf * posting->weight;
    bool all = true;
    for (size_t t = 1; t < lists.size() && all; ++t) {
      std::optional<double> part = lists[t].Seek(posting->row);
      all = part.has_value();
      if (all) score += *part;
    }
    if (!all) continue;
    const Row& row = rows_[posting->row];
    if (!Passes(row, posting->row, filter)) continue;
    Candidate candidate{posting->row, score, SortKey(query.sort, row, score)};
    if (query.after && !IsAfter(candidate, *query.after, cursor_prefix)) continue;
    candidates.push_back(candidate);
  }
  return Best(std::move(candidates), query.limit, more);
}

}  // namespace helpline::catalog
