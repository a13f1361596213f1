#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "helpline/catalog/v1/catalog.pb.h"

// The search index over published experts: an inverted index of their text
// (headline and name weigh most, then skills, then bio), postings per
// category, and orders by rating and price for browsing without text.
//
// What filters read is kept apart from the rest, one cache line per expert
// in a dense array (a search looks at thousands of experts; each one costs
// a memory access, not five). Not thread-safe: the read model guards it.
namespace helpline::catalog {

inline constexpr int kMaxCategoriesPerExpert = 5;
inline constexpr int kMaxLanguagesPerExpert = 10;

struct IndexedExpert {
  std::string expert_id;
  std::shared_ptr<const v1::ProfileContent> live;
  // The read model's numbers for the profile's categories.
  std::vector<int> categories;
  // (token id, field-weighted term frequency), by token id.
  std::vector<std::pair<int32_t, float>> tokens;
  bool online = false;
  uint32_t row = 0;
  // The fields of its search hit that only change with the profile, as a
  // serialized ExpertHit: a page is these bytes plus a few per search.
  std::string hit;
};

// A set of small numbers (category numbers) as a bitmask.
class NumberSet {
 public:
  void Add(int number);
  bool Contains(int number) const {
    size_t word = static_cast<size_t>(number) / 64;
    return word < bits_.size() && (bits_[word] >> (number % 64) & 1) != 0;
  }
  bool empty() const { return empty_; }

 private:
  std::vector<uint64_t> bits_;
  bool empty_ = true;
};

// What a search filters on, in the index's terms.
struct ExpertFilter {
  // In one of these categories (numbers); no restriction when null.
  const NumberSet* categories = nullptr;
  // Speaks one of these language numbers (LanguagesCovered); no restriction
  // when null.
  const std::vector<uint16_t>* languages = nullptr;
  v1::PricingKind pricing = v1::PRICING_KIND_UNSPECIFIED;
  std::optional<int64_t> min_price_per_minute;
  std::optional<int64_t> max_price_per_minute;
  double min_rating = 0;
  bool online_only = false;
  // Covered by a sponsor program in effect: by category or by expert id.
  bool sponsored_only = false;
  const NumberSet* sponsored_categories = nullptr;
  const absl::flat_hash_set<std::string>* sponsored_experts = nullptr;
};

// Where a page ended: its last hit's sort key and id. Results are ordered by
// key (descending), then expert id (ascending).
struct SearchCursor {
  double key = 0;
  std::string expert_id;
};

struct ExpertQuery {
  // Query tokens: all must match, the last one as a prefix. Empty: browse.
  std::vector<std::string> terms;
  ExpertFilter filter;
  // The category numbers of filter.categories as a list: lets the index
  // start from the categories' postings. Empty: any.
  std::vector<int> category_list;
  v1::SearchSort sort = v1::SEARCH_SORT_RELEVANCE;
  int limit = 20;
  std::optional<SearchCursor> after;
  // Per word, the idf the first page used (negative: the word was left out);
  // empty on a first page. Text scores depend on everyone's words; a page
  // scored with other idfs would repeat or skip hits.
  std::vector<double> term_idf;
};

struct ExpertMatch {
  const IndexedExpert* expert;
  // Text score, 0 without text.
  double relevance;
  // The sort key the next page's cursor is made of.
  double key;
};

struct ExpertResults {
  std::vector<ExpertMatch> matches;
  // Another page follows.
  bool more = false;
  // What the next page's query must carry as its term_idf.
  std::vector<double> term_idf;
};

class ExpertIndex {
 public:
  // Adds or replaces a published expert.
  void Put(const std::string& expert_id, std::shared_ptr<const v1::ProfileContent> live,
           std::vector<int> categories, double rating, bool online);
  void Remove(const std::string& expert_id);
  void SetRating(const std::string& expert_id, double rating);
  void SetOnline(const std::string& expert_id, bool online);

  const IndexedExpert* Find(const std::string& expert_id) const;
  size_t size() const { return experts_.size(); }
  template <class Visit>
  void ForEach(Visit visit) const {
    for (const auto& [id, expert] : experts_) visit(expert);
  }
  // The numbers of the language tags that `language` covers: itself and its
  // subtags ("de" covers "de-AT").
  std::vector<uint16_t> LanguagesCovered(const std::string& language) const;

  // Up to query.limit matches after the cursor in the sort's order.
  ExpertResults Search(const ExpertQuery& query) const;

 private:
  // What filters and sorting read, one cache line.
  struct Row {
    const IndexedExpert* expert = nullptr;  // null: a free row
    uint64_t id_prefix = 0;                 // the id's first 8 bytes, big-endian
    double rating = 0;
    int32_t price_per_minute = 0;           // at most 10,000,000 / 5
    uint8_t pricing = v1::PRICING_KIND_UNSPECIFIED;
    bool online = false;
    uint8_t category_count = 0;
    uint8_t language_count = 0;
    uint16_t categories[kMaxCategoriesPerExpert] = {};
    uint16_t languages[kMaxLanguagesPerExpert] = {};
  };
  static_assert(sizeof(Row) <= 64);
  struct Posting {
    uint32_t row;
    float weight;
  };
  struct OrderEntry {
    double key;
    std::string_view expert_id;
    uint32_t row;
  };
  struct OrderLess {
    bool operator()(const OrderEntry& a, const OrderEntry& b) const {
      return a.key > b.key || (a.key == b.key && a.expert_id < b.expert_id);
    }
  };
  using Order = absl::btree_set<OrderEntry, OrderLess>;
  // The three orders of a set of experts (everyone, or one category's).
  struct Orders {
    Order by_rating;
    Order by_price_ascending;
    Order by_price_descending;
    const Order& For(v1::SearchSort sort) const;
    void Insert(const Row& row, std::string_view expert_id, uint32_t index);
    void Erase(const Row& row, std::string_view expert_id, uint32_t index);
  };
  struct Candidate {
    uint32_t row;
    double relevance;
    double key;
    uint64_t id_prefix;
  };
  // The query's filter with sponsored experts resolved to rows.
  struct ResolvedFilter {
    const ExpertFilter* filter;
    absl::flat_hash_set<uint32_t> sponsored_rows;
    bool lets_everyone_through = false;
  };

  void Unlink(const IndexedExpert& expert);
  void Link(const IndexedExpert& expert);
  bool Passes(const Row& row, uint32_t index, const ResolvedFilter& filter) const;
  double SortKey(v1::SearchSort sort, const Row& row, double relevance) const;
  // Orders by key, then id; the id's prefix decides most ties.
  bool Before(const Candidate& a, const Candidate& b) const;
  bool IsAfter(const Candidate& candidate, const SearchCursor& cursor,
               uint64_t cursor_prefix) const;
  // Keeps the best limit + 1 candidates offered (a heap, the worst on top).
  void Offer(std::vector<Candidate>& best, const Candidate& candidate, int limit) const;
  // The heap as a page in order; `more` if it held more than `limit`.
  std::vector<ExpertMatch> Page(std::vector<Candidate> best, int limit, bool* more) const;
  std::vector<ExpertMatch> SearchText(const ExpertQuery& query, const ResolvedFilter& filter,
                                      bool* more, std::vector<double>* term_idf) const;
  // Merges the orders (an expert in several once) from the cursor on,
  // keeping those that pass the filter (and are `within` the text's
  // matches, if given: row order, with their scores), until the page is full.
  std::vector<ExpertMatch> Walk(const ExpertQuery& query, const ResolvedFilter& filter,
                                const std::vector<const Order*>& orders, bool* more,
                                const std::vector<Posting>* within = nullptr) const;
  int32_t TokenId(const std::string& token);
  // The postings of many tokens as one list in row order, each expert with
  // its best idf-weighted weight.
  std::vector<Posting> Union(const std::vector<int32_t>& tokens) const;

  absl::node_hash_map<std::string, IndexedExpert> experts_;
  std::vector<Row> rows_;
  std::vector<uint32_t> free_rows_;
  absl::btree_map<std::string, int32_t> dictionary_;
  std::vector<std::vector<Posting>> postings_;  // by token id
  // By row, apart from the rows: what ranking text matches reads.
  std::vector<double> ratings_;
  std::vector<uint64_t> id_prefixes_;
  absl::btree_map<std::string, uint16_t> languages_;
  Orders everyone_;
  absl::flat_hash_map<int, Orders> by_category_;
};

// Text score plus this times the rating is the relevance order's key, so
// equally good matches come best-rated first.
inline constexpr double kRatingWeightInRelevance = 0.1;

}  // namespace helpline::catalog
