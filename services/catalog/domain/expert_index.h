#pragma once

#include <cstdint>
#include <functional>
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
// Not thread-safe: the read model guards it.
namespace helpline::catalog {

struct IndexedExpert {
  std::string expert_id;
  std::shared_ptr<const v1::ProfileContent> live;
  // The read model's numbers for the profile's categories.
  std::vector<int> categories;
  int64_t price_per_minute = 0;
  v1::PricingKind pricing = v1::PRICING_KIND_UNSPECIFIED;
  // The Bayesian rating search ranks by.
  double rating = 0;
  bool online = false;
  // (token id, field-weighted term frequency), by token id.
  std::vector<std::pair<int32_t, float>> tokens;
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
  // Every other filter; null lets everyone through.
  std::function<bool(const IndexedExpert&)> filter;
  // Category numbers the hits must be in (the filter checks it as well);
  // lets the index start from the categories' postings. Null: any.
  const absl::flat_hash_set<int>* categories = nullptr;
  v1::SearchSort sort = v1::SEARCH_SORT_RELEVANCE;
  int limit = 20;
  std::optional<SearchCursor> after;
};

struct ExpertMatch {
  const IndexedExpert* expert;
  // Text score, 0 without text.
  double relevance;
  // The sort key the next page's cursor is made of.
  double key;
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

  // Up to query.limit matches after the cursor in the sort's order;
  // `more` says whether another page follows.
  std::vector<ExpertMatch> Search(const ExpertQuery& query, bool* more) const;

 private:
  struct OrderEntry {
    double key;
    std::string_view expert_id;
    const IndexedExpert* expert;
  };
  struct OrderLess {
    bool operator()(const OrderEntry& a, const OrderEntry& b) const {
      return a.key > b.key || (a.key == b.key && a.expert_id < b.expert_id);
    }
  };
  using Order = absl::btree_set<OrderEntry, OrderLess>;

  void Unlink(const IndexedExpert& expert);
  void Link(const IndexedExpert& expert);
  const Order& OrderFor(v1::SearchSort sort) const;
  std::vector<ExpertMatch> SearchText(const ExpertQuery& query, bool* more) const;
  std::vector<ExpertMatch> Walk(const ExpertQuery& query, bool* more) const;
  std::vector<ExpertMatch> Collect(const ExpertQuery& query,
                                   const std::vector<const IndexedExpert*>& candidates,
                                   bool* more) const;
  int32_t TokenId(const std::string& token);

  absl::node_hash_map<std::string, IndexedExpert> experts_;
  absl::btree_map<std::string, int32_t> dictionary_;
  std::vector<std::vector<const IndexedExpert*>> postings_;  // by token id
  absl::flat_hash_map<int, std::vector<const IndexedExpert*>> by_category_;
  Order by_rating_;
  Order by_price_ascending_;
  Order by_price_descending_;
};

// Text score plus this times the rating is the relevance order's key, so
// equally good matches come best-rated first.
inline constexpr double kRatingWeightInRelevance = 0.1;

}  // namespace helpline::catalog
