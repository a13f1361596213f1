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
  expert.online = online;
  if (free_rows_.empty()) {
    expert.row = static_cast<uint32_t>(rows_.size());
    rows_.emplace_back();
    ratings_.push_back(0);
    id_prefixes_.push_back(0);
  } else {
    expert.row = free_rows_.back();
    free_rows_.pop_back();
  }
  Row& row = rows_[expert.row];
  row = Row();
  row.expert = &expert;
  row.id_prefix = IdPrefix(expert_id);
  id_prefixes_[expert.row] = row.id_prefix;
  row.rating = rating;
  ratings_[expert.row] = rating;
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
  v1::ExpertHit hit;
  hit.set_expert_id(expert_id);
  hit.set_public_name(live->public_name());
  hit.set_headline(live->headline());
  *hit.mutable_category_ids() = live->category_ids();
  *hit.mutable_languages() = live->languages();
  *hit.mutable_price() = live->price();
  hit.SerializeToString(&expert.hit);
  expert.live = std::move(live);
  Link(expert);
}

void ExpertIndex::Orders::Insert(const Row& row, std::string_view expert_id, uint32_t index) {
  double price = static_cast<double>(row.price_per_minute);
  by_rating.insert({row.rating, expert_id, index});
  by_price_ascending.insert({-price, expert_id, index});
  by_price_descending.insert({price, expert_id, index});
}

void ExpertIndex::Orders::Erase(const Row& row, std::string_view expert_id, uint32_t index) {
  double price = static_cast<double>(row.price_per_minute);
  by_rating.erase({row.rating, expert_id, index});
  by_price_ascending.erase({-price, expert_id, index});
  by_price_descending.erase({price, expert_id, index});
}

const ExpertIndex::Order& ExpertIndex::Orders::For(v1::SearchSort sort) const {
  switch (sort) {
    case v1::SEARCH_SORT_PRICE_LOW_TO_HIGH:
      return by_price_ascending;
    case v1::SEARCH_SORT_PRICE_HIGH_TO_LOW:
      return by_price_descending;
    default:
      return by_rating;
  }
}

void ExpertIndex::Link(const IndexedExpert& expert) {
  for (const auto& [token, weight] : expert.tokens) {
    std::vector<Posting>& list = postings_[token];
    // Kept in row order, for intersecting by galloping.
    auto at = std::lower_bound(list.begin(), list.end(), expert.row,
                               [](const Posting& posting, uint32_t row) { return posting.row < row; });
    list.insert(at, {expert.row, weight});
  }
  const Row& row = rows_[expert.row];
  everyone_.Insert(row, expert.expert_id, expert.row);
  for (int category : expert.categories) {
    by_category_[category].Insert(row, expert.expert_id, expert.row);
  }
}

void ExpertIndex::Unlink(const IndexedExpert& expert) {
  for (const auto& [token, weight] : expert.tokens) {
    std::vector<Posting>& list = postings_[token];
    auto at = std::lower_bound(list.begin(), list.end(), expert.row,
                               [](const Posting& posting, uint32_t row) { return posting.row < row; });
    if (at != list.end() && at->row == expert.row) list.erase(at);
  }
  const Row& row = rows_[expert.row];
  everyone_.Erase(row, expert.expert_id, expert.row);
  for (int category : expert.categories) {
    by_category_[category].Erase(row, expert.expert_id, expert.row);
  }
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
  std::vector<Order*> orders = {&everyone_.by_rating};
  for (int category : expert.categories) orders.push_back(&by_category_[category].by_rating);
  for (Order* order : orders) order->erase({row.rating, expert.expert_id, expert.row});
  row.rating = rating;
  ratings_[expert.row] = rating;
  for (Order* order : orders) order->insert({row.rating, expert.expert_id, expert.row});
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
  if (a.id_prefix != b.id_prefix) return a.id_prefix < b.id_prefix;
  return rows_[a.row].expert->expert_id < rows_[b.row].expert->expert_id;
}

bool ExpertIndex::IsAfter(const Candidate& candidate, const SearchCursor& cursor,
                          uint64_t cursor_prefix) const {
  if (candidate.key != cursor.key) return candidate.key < cursor.key;
  if (candidate.id_prefix != cursor_prefix) return candidate.id_prefix > cursor_prefix;
  return rows_[candidate.row].expert->expert_id > cursor.expert_id;
}

void ExpertIndex::Offer(std::vector<Candidate>& best, const Candidate& candidate,
                        int limit) const {
  auto before = [this](const Candidate& a, const Candidate& b) { return Before(a, b); };
  if (best.size() <= static_cast<size_t>(limit)) {
    best.push_back(candidate);
    std::push_heap(best.begin(), best.end(), before);
  } else if (Before(candidate, best.front())) {
    std::pop_heap(best.begin(), best.end(), before);
    best.back() = candidate;
    std::push_heap(best.begin(), best.end(), before);
  }
}

std::vector<ExpertMatch> ExpertIndex::Page(std::vector<Candidate> best, int limit,
                                           bool* more) const {
  std::sort_heap(best.begin(), best.end(),
                 [this](const Candidate& a, const Candidate& b) { return Before(a, b); });
  *more = best.size() > static_cast<size_t>(limit);
  if (*more) best.resize(static_cast<size_t>(limit));
  std::vector<ExpertMatch> matches;
  matches.reserve(best.size());
  for (const Candidate& candidate : best) {
    matches.push_back({rows_[candidate.row].expert, candidate.relevance, candidate.key});
  }
  return matches;
}

ExpertResults ExpertIndex::Search(const ExpertQuery& query) const {
  ExpertResults results;
  if (query.limit <= 0) return results;
  bool* more = &results.more;
  ResolvedFilter filter{&query.filter, {}};
  if (query.filter.sponsored_only && query.filter.sponsored_experts != nullptr) {
    for (const std::string& id : *query.filter.sponsored_experts) {
      if (const IndexedExpert* expert = Find(id)) filter.sponsored_rows.insert(expert->row);
    }
  }
  const ExpertFilter& f = query.filter;
  filter.lets_everyone_through =
      f.categories == nullptr && f.languages == nullptr &&
      f.pricing == v1::PRICING_KIND_UNSPECIFIED && !f.min_price_per_minute &&
      !f.max_price_per_minute && f.min_rating <= 0 && !f.online_only && !f.sponsored_only;
  if (!query.terms.empty()) {
    results.matches = SearchText(query, filter, more, &results.term_idf);
    return results;
  }
  std::vector<const Order*> orders;
  if (query.category_list.empty()) {
    orders.push_back(&everyone_.For(query.sort));
  } else {
    for (int category : query.category_list) {
      auto in_category = by_category_.find(category);
      if (in_category != by_category_.end()) orders.push_back(&in_category->second.For(query.sort));
    }
  }
  results.matches = Walk(query, filter, orders, more);
  return results;
}

std::vector<ExpertMatch> ExpertIndex::Walk(const ExpertQuery& query, const ResolvedFilter& filter,
                                           const std::vector<const Order*>& orders, bool* more,
                                           const std::vector<Posting>* within) const {
  struct Cursor {
    Order::const_iterator at;
    Order::const_iterator end;
  };
  std::vector<Cursor> cursors;
  for (const Order* order : orders) {
    Cursor cursor{order->begin(), order->end()};
    if (query.after) cursor.at = order->upper_bound({query.after->key, query.after->expert_id, 0});
    if (cursor.at != cursor.end) cursors.push_back(cursor);
  }
  // A heap of the cursors by their next entry, first in order on top.
  auto later = [](const Cursor& a, const Cursor& b) { return OrderLess()(*b.at, *a.at); };
  std::make_heap(cursors.begin(), cursors.end(), later);
  std::vector<uint64_t> within_rows;
  if (within != nullptr) {
    within_rows.assign((rows_.size() + 63) / 64, 0);
    for (const Posting& match : *within) within_rows[match.row / 64] |= uint64_t{1} << (match.row % 64);
  }
  std::vector<ExpertMatch> matches;
  int64_t previous = -1;
  while (!cursors.empty()) {
    std::pop_heap(cursors.begin(), cursors.end(), later);
    Cursor& cursor = cursors.back();
    const OrderEntry entry = *cursor.at;
    if (++cursor.at == cursor.end) {
      cursors.pop_back();
    } else {
      std::push_heap(cursors.begin(), cursors.end(), later);
    }
    if (entry.row == previous) continue;  // in two of the categories
    previous = entry.row;
    double relevance = 0;
    if (within != nullptr) {
      if ((within_rows[entry.row / 64] >> (entry.row % 64) & 1) == 0) continue;
      auto match = std::lower_bound(
          within->begin(), within->end(), entry.row,
          [](const Posting& posting, uint32_t row) { return posting.row < row; });
      if (match == within->end() || match->row != entry.row) continue;
      relevance = match->weight;
    }
    if (!filter.lets_everyone_through && !Passes(rows_[entry.row], entry.row, filter)) continue;
    if (static_cast<int>(matches.size()) == query.limit) {
      *more = true;
      break;
    }
    matches.push_back({rows_[entry.row].expert, relevance, entry.key});
  }
  return matches;
}

std::vector<ExpertIndex::Posting> ExpertIndex::Union(const std::vector<int32_t>& tokens) const {
  // Marks each expert in a bitmap (and its best weight in a row-indexed
  // scratch), then reads the bitmap in order: linear in the postings, with
  // no sorting. The scratch is per thread: searches run in parallel.
  thread_local std::vector<uint64_t> marks;
  thread_local std::vector<float> best;
  marks.assign((rows_.size() + 63) / 64, 0);
  if (best.size() < rows_.size()) best.resize(rows_.size());
  size_t total = 0;
  for (int32_t token : tokens) {
    const std::vector<Posting>& postings = postings_[token];
    total += postings.size();
    for (const Posting& posting : postings) {
      uint64_t& word = marks[posting.row / 64];
      uint64_t bit = uint64_t{1} << (posting.row % 64);
      float weight = posting.weight;
      if ((word & bit) == 0) {
        word |= bit;
        best[posting.row] = weight;
      } else {
        best[posting.row] = std::max(best[posting.row], weight);
      }
    }
  }
  std::vector<Posting> merged;
  merged.reserve(total);
  for (size_t w = 0; w < marks.size(); ++w) {
    for (uint64_t word = marks[w]; word != 0; word &= word - 1) {
      uint32_t row = static_cast<uint32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(word)));
      merged.push_back({row, best[row]});
    }
  }
  return merged;
}

std::vector<ExpertMatch> ExpertIndex::SearchText(const ExpertQuery& query,
                                                 const ResolvedFilter& filter, bool* more,
                                                 std::vector<double>* term_idf) const {
  const size_t documents = experts_.size();
  // A term's postings in row order, read front to back as rows increase.
  struct TermList {
    const Posting* at;
    const Posting* end;
    double idf;
    size_t position;  // of its word in the query
    size_t size() const { return static_cast<size_t>(end - at); }
    // Moves to the first posting at or after `row` (galloping); its weight
    // times the idf if it is `row`.
    std::optional<double> Seek(uint32_t row) {
      size_t left = size();
      size_t step = 1;
      while (step < left && at[step].row < row) {
        at += step;
        left -= step;
        step *= 2;
      }
      at = std::lower_bound(at, at + std::min(step + 1, left), row,
                            [](const Posting& posting, uint32_t r) { return posting.row < r; });
      if (at == end || at->row != row) return std::nullopt;
      return idf * at->weight;
    }
  };

  // One list per word; the last word as a prefix stands for every word it
  // begins (an expert counts with the best of them).
  std::vector<TermList> lists;
  std::vector<Posting> merged;
  for (size_t i = 0; i < query.terms.size(); ++i) {
    const bool last = i + 1 == query.terms.size();
    std::vector<int32_t> tokens;
    if (!last) {
      auto found = dictionary_.find(query.terms[i]);
      if (found != dictionary_.end() && !postings_[found->second].empty()) {
        tokens.push_back(found->second);
      }
    } else {
      for (auto it = dictionary_.lower_bound(query.terms[i]);
           it != dictionary_.end() && absl::StartsWith(it->first, query.terms[i]); ++it) {
        if (!postings_[it->second].empty()) tokens.push_back(it->second);
      }
    }
    if (tokens.empty()) return {};
    if (tokens.size() == 1) {
      const std::vector<Posting>& postings = postings_[tokens[0]];
      lists.push_back({postings.data(), postings.data() + postings.size(), 0, i});
    } else {
      merged = Union(tokens);
      lists.push_back({merged.data(), merged.data() + merged.size(), 0, i});
    }
  }
  // Each word's idf, as the first page saw it (so later pages order the
  // same way whatever other experts do); negative: the word is left out.
  // A word in more than half of everyone ("help") narrows nothing and
  // weighs next to nothing: it is left out, as long as another remains.
  std::vector<double> idf(lists.size());
  if (query.term_idf.size() == lists.size()) {
    idf = query.term_idf;
  } else {
    size_t kept = lists.size();
    std::vector<size_t> by_size(lists.size());
    for (size_t i = 0; i < lists.size(); ++i) by_size[i] = i;
    std::sort(by_size.begin(), by_size.end(),
              [&](size_t a, size_t b) { return lists[a].size() > lists[b].size(); });
    for (size_t i : by_size) {
      if (kept > 1 && lists[i].size() * 2 > documents) {
        idf[i] = -1;
        --kept;
      } else {
        idf[i] = Idf(documents, lists[i].size());
      }
    }
  }
  *term_idf = idf;
  std::vector<TermList> used;
  for (size_t i = 0; i < lists.size(); ++i) {
    if (idf[i] < 0) continue;
    lists[i].idf = idf[i];
    used.push_back(lists[i]);
  }
  if (used.empty()) return {};
  // The shortest list leads; the others are galloped through.
  std::sort(used.begin(), used.end(),
            [](const TermList& a, const TermList& b) { return a.size() < b.size(); });

  // Sorted by rating or price with many matches: walk that order and keep
  // the matches (collected first, in row order), rather than rank them all.
  const bool walk = query.sort != v1::SEARCH_SORT_RELEVANCE && used[0].size() * 16 > documents;
  std::vector<Posting> matched;
  const uint64_t cursor_prefix = query.after ? IdPrefix(query.after->expert_id) : 0;
  std::vector<Candidate> best;
  best.reserve(static_cast<size_t>(query.limit) + 1);
  // Parts of the score by word position, added in query order: the same
  // sum, bit for bit, whichever list leads.
  std::vector<double> parts(query.terms.size(), 0);
  TermList& lead = used[0];
  for (const Posting* posting = lead.at; posting != lead.end; ++posting) {
    parts[lead.position] = lead.idf * posting->weight;
    bool all = true;
    for (size_t t = 1; t < used.size() && all; ++t) {
      std::optional<double> part = used[t].Seek(posting->row);
      all = part.has_value();
      if (all) parts[used[t].position] = *part;
    }
    if (!all) {
      if (std::any_of(used.begin() + 1, used.end(),
                      [](const TermList& list) { return list.at == list.end; })) {
        break;  // a word has no more experts: nobody further has them all
      }
      continue;
    }
    double score = 0;
    for (size_t p = 0; p < parts.size(); ++p) score += parts[p];
    const uint32_t index = posting->row;
    if (walk) {
      matched.push_back({index, static_cast<float>(score)});
      continue;
    }
    double key;
    if (filter.lets_everyone_through && query.sort == v1::SEARCH_SORT_RELEVANCE) {
      key = score + kRatingWeightInRelevance * ratings_[index];
    } else {
      const Row& row = rows_[index];
      if (!Passes(row, index, filter)) continue;
      key = SortKey(query.sort, row, score);
    }
    Candidate candidate{index, score, key, id_prefixes_[index]};
    if (query.after && !IsAfter(candidate, *query.after, cursor_prefix)) continue;
    Offer(best, candidate, query.limit);
  }
  if (walk) return Walk(query, filter, {&everyone_.For(query.sort)}, more, &matched);
  return Page(std::move(best), query.limit, more);
}

}  // namespace helpline::catalog
