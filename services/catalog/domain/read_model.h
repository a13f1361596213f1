#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/catalog/v1/catalog.pb.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/catalog/v1/state.pb.h"
#include "services/catalog/domain/expert_index.h"
#include "services/runtime/eventsourcing/projection.h"

namespace helpline::catalog {

// How ratings are averaged: the reviews are pulled towards `prior_mean` as
// if `prior_weight` reviews of that many stars came first.
struct RatingOptions {
  double prior_mean = 4.0;
  double prior_weight = 5;
};

// What a search needs besides its validated request.
struct SearchOptions {
  // Names the request's fields other than page size and token; a page token
  // made for another search is refused.
  std::string fingerprint;
  absl::Time now;
  // Experts left out of the hits (deleted accounts whose erasure is on its
  // way); null: none.
  std::function<bool(const std::string& expert_id)> hidden;
};

// What catalog's front answers queries from: profiles (every status, for
// their owners and admins), the search index of published ones, the category
// tree, sponsor programs, and what other services say about experts
// (ratings from reviews, online presence). Thread-safe: queries share a
// reader lock, events take the writer lock.
class CatalogReadModel : public es::TypedProjection<v1::CatalogEvent> {
 public:
  explicit CatalogReadModel(RatingOptions ratings = {});

  void Apply(const v1::CatalogEvent& event) override;

  // Sessions' ReviewSubmitted: 1 to 5 stars for an expert.
  void RecordReview(const std::string& expert_id, int stars);
  // Matching's presence: the expert is online and free (or not).
  void SetOnline(const std::string& expert_id, bool online);

  // The whole profile (draft and rejection reason included); nullopt if the
  // expert has none.
  std::optional<v1::ExpertProfile> Profile(const std::string& expert_id, absl::Time now);
  // Profiles waiting for review, longest waiting first, after `after_token`.
  absl::StatusOr<std::pair<std::vector<v1::ExpertProfile>, std::string>> ReviewQueue(
      int page_size, const std::string& after_token, absl::Time now);

  // A page of search hits as a serialized SearchExpertsResponse (most of it
  // copied from bytes kept per expert), and the same parsed.
  absl::StatusOr<std::string> SearchSerialized(const v1::SearchExpertsRequest& request,
                                               const SearchOptions& options);
  absl::StatusOr<v1::SearchExpertsResponse> Search(const v1::SearchExpertsRequest& request,
                                                   const SearchOptions& options);

  bool IsActiveCategory(const std::string& category_id);
  bool IsCategory(const std::string& category_id);
  bool HasCategories();
  std::optional<v1::Category> Category(const std::string& category_id);
  // Depth first, parents before children, siblings by name.
  std::vector<v1::Category> Categories(bool include_retired);

  std::optional<v1::SponsorProgram> Program(const std::string& program_id, absl::Time now);
  // Programs in id order after `after_token` that `visible` lets through
  // (and that cover `covering_expert`, unless it is empty).
  absl::StatusOr<std::pair<std::vector<v1::SponsorProgram>, std::string>> Programs(
      const std::function<bool(const v1::SponsorProgram&)>& visible,
      const std::string& covering_expert, int page_size,
      const std::string& after_token, absl::Time now);

  size_t published();

  // The ids of the programs this sponsor created, closed ones included.
  std::vector<std::string> ProgramIdsOf(const std::string& sponsor_id);

 private:
  // The profile as the domain folds it, except that the live version is
  // kept once, shared with the search index, and a draft equal to it (the
  // usual case) is not kept at all.
  struct ProfileView {
    v1::ProfileState state;  // without `live`, and without `draft` if draft_is_live
    std::shared_ptr<const v1::ProfileContent> live;
    bool draft_is_live = false;
    int64_t version = 0;
    absl::Time updated_at;
  };
  struct CategoryView {
    int number;
    std::string name;
    std::string parent_id;
    bool retired = false;
  };
  struct RatingView {
    int64_t count = 0;
    int64_t stars = 0;
  };
  struct ProgramView {
    std::string sponsor_id;
    v1::SponsorProgramTerms terms;
    bool paused = false;
    bool closed = false;
    int64_t version = 0;
    absl::Time created_at;
  };
  // Who sponsor programs in effect now cover.
  struct Sponsorship {
    absl::flat_hash_set<std::string> experts;
    absl::flat_hash_set<int> categories;  // with their descendants
    std::vector<std::pair<std::string, const ProgramView*>> programs;
  };

  void ApplyProfile(const v1::CatalogEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ApplyCategory(const v1::CatalogEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ApplyProgram(const v1::CatalogEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Reindex(const std::string& expert_id, const ProfileView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  double RatingOf(const std::string& expert_id) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  v1::Rating RatingMessage(const std::string& expert_id) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // The number of a category id, given on first sight: a profile's event can
  // come before its category's (they are on different partitions).
  int NumberOf(const std::string& category_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::vector<int> CategoryNumbers(const v1::ProfileContent& content) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  absl::flat_hash_set<int> Subtree(const std::string& category_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  Sponsorship SponsorshipAt(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  bool ProgramCovers(const ProgramView& program, const std::string& expert_id,
                     const std::vector<int>& categories) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  bool Covers(const Sponsorship& sponsorship, const std::string& expert_id,
              const std::vector<int>& categories) const;
  v1::ExpertProfile ProfileMessage(const std::string& expert_id, const ProfileView& view,
                                   const Sponsorship& sponsorship) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // Published experts per category, each counted once in every category
  // above its own.
  absl::flat_hash_map<std::string, int64_t> ExpertCounts() const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  v1::Category CategoryMessage(const std::string& category_id, const CategoryView& view,
                               const absl::flat_hash_map<std::string, int64_t>& counts) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  v1::SponsorProgram ProgramMessage(const std::string& program_id, const ProgramView& view,
                                    absl::Time now) const;

  const RatingOptions rating_options_;
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, ProfileView> profiles_ ABSL_GUARDED_BY(mutex_);
  ExpertIndex index_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, CategoryView> categories_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, int> category_numbers_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, RatingView> ratings_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<std::string> online_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, ProgramView> programs_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, std::vector<std::string>> children_ ABSL_GUARDED_BY(mutex_);
  // (waiting since, expert id) of profiles in review.
  absl::btree_set<std::pair<absl::Time, std::string>> review_queue_ ABSL_GUARDED_BY(mutex_);
};

// An opaque page token: base64url of the parts; nullopt if it is not one.

}  // namespace helpline::catalog
