#include "services/catalog/domain/read_model.h"

#include "services/runtime/core/paging.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "absl/strings/match.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/search_text.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::catalog {
namespace {

constexpr int kDefaultPageSize = 20;
// SearchExpertsResponse's fields on the wire: 1 hits, 2 next_page_token
// (length-delimited).
constexpr uint32_t kHitsTag = (1 << 3) | 2;
constexpr uint32_t kNextPageTokenTag = (2 << 3) | 2;

std::string KeyBits(double key) {
  uint64_t bits;
  std::memcpy(&bits, &key, sizeof(bits));
  return absl::StrCat(absl::Hex(bits));
}

std::optional<double> KeyFromBits(const std::string& text) {
  uint64_t bits;
  if (!absl::SimpleHexAtoi(text, &bits)) return std::nullopt;
  double key;
  std::memcpy(&key, &bits, sizeof(key));
  if (std::isnan(key)) return std::nullopt;
  return key;
}

absl::Status BadPageToken(const std::string& why) { return errors::InvalidField("page_token", why); }

bool InEffect(const v1::SponsorProgramTerms& terms, bool paused, absl::Time now) {
  return !paused && FromProtoTime(terms.active_from()) <= now &&
         (!terms.has_active_until() || now < FromProtoTime(terms.active_until()));
}

}  // namespace

CatalogReadModel::CatalogReadModel(RatingOptions ratings) : rating_options_(ratings) {}

void CatalogReadModel::Apply(const v1::CatalogEvent& event) {
  const std::string& id = event.meta().aggregate_id();
  absl::MutexLock lock(&mutex_);
  if (id == kCategoryTreeId) {
    ApplyCategory(event);
  } else if (IsSponsorProgramId(id)) {
    ApplyProgram(event);
  } else {
    ApplyProfile(event);
  }
}

void CatalogReadModel::ApplyProfile(const v1::CatalogEvent& event) {
  const std::string& id = event.meta().aggregate_id();
  ProfileView& view = profiles_[id];
  auto in_review = [](const v1::ProfileState& state) {
    return state.status() == v1::PROFILE_STATUS_SUBMITTED ||
           (IsApproved(state.status()) &&
            state.held_change() == v1::HELD_CHANGE_STATUS_IN_REVIEW);
  };
  if (in_review(view.state)) {
    review_queue_.erase({FromProtoTime(view.state.submitted_at()), id});
  }
  if (event.has_profile_erased()) {
    index_.Remove(id);
    profiles_.erase(id);
    return;
  }
  v1::CatalogState state;
  state.mutable_profile()->Swap(&view.state);
  if (view.draft_is_live) *state.mutable_profile()->mutable_draft() = *view.live;
  CatalogDomain::Apply(state, event);
  view.state.Swap(state.mutable_profile());
  if (view.state.has_live()) {
    view.live = std::make_shared<const v1::ProfileContent>(std::move(*view.state.mutable_live()));
    view.state.clear_live();
  }
  view.draft_is_live =
      view.live && google::protobuf::util::MessageDifferencer::Equals(view.state.draft(), *view.live);
  if (view.draft_is_live) view.state.clear_draft();
  view.version = event.meta().aggregate_version();
  view.updated_at = FromProtoTime(event.meta().occurred_at());
  if (in_review(view.state)) {
    review_queue_.insert({FromProtoTime(view.state.submitted_at()), id});
  }
  Reindex(id, view);
}

int CatalogReadModel::NumberOf(const std::string& category_id) {
  auto [entry, added] =
      category_numbers_.try_emplace(category_id, static_cast<int>(category_numbers_.size()));
  return entry->second;
}

void CatalogReadModel::Reindex(const std::string& expert_id, const ProfileView& view) {
  if (view.state.status() == v1::PROFILE_STATUS_PUBLISHED && view.live) {
    std::vector<int> numbers;
    for (const std::string& id : view.live->category_ids()) numbers.push_back(NumberOf(id));
    index_.Put(expert_id, view.live, std::move(numbers), RatingOf(expert_id),
               online_.contains(expert_id));
  } else {
    index_.Remove(expert_id);
  }
}

void CatalogReadModel::ApplyCategory(const v1::CatalogEvent& event) {
  switch (event.body_case()) {
    case v1::CatalogEvent::kCategoryCreated: {
      const v1::CategoryCreated& created = event.category_created();
      CategoryView& view = categories_[created.category_id()];
      view.number = NumberOf(created.category_id());
      view.name = created.name();
      view.parent_id = created.parent_id();
      children_[view.parent_id].push_back(created.category_id());
      break;
    }
    case v1::CatalogEvent::kCategoryRenamed: {
      auto found = categories_.find(event.category_renamed().category_id());
      if (found != categories_.end()) found->second.name = event.category_renamed().name();
      break;
    }
    case v1::CatalogEvent::kCategoryMoved: {
      const v1::CategoryMoved& moved = event.category_moved();
      auto found = categories_.find(moved.category_id());
      if (found == categories_.end()) break;
      std::vector<std::string>& siblings = children_[found->second.parent_id];
      siblings.erase(std::remove(siblings.begin(), siblings.end(), moved.category_id()),
                     siblings.end());
      found->second.parent_id = moved.parent_id();
      children_[moved.parent_id()].push_back(moved.category_id());
      break;
    }
    case v1::CatalogEvent::kCategoryRetired: {
      auto found = categories_.find(event.category_retired().category_id());
      if (found != categories_.end()) found->second.retired = true;
      break;
    }
    default:
      break;
  }
}

void CatalogReadModel::ApplyProgram(const v1::CatalogEvent& event) {
  ProgramView& view = programs_[event.meta().aggregate_id()];
  view.version = event.meta().aggregate_version();
  switch (event.body_case()) {
    case v1::CatalogEvent::kSponsorProgramCreated:
      view.sponsor_id = event.sponsor_program_created().sponsor_id();
      view.terms = event.sponsor_program_created().terms();
      view.created_at = FromProtoTime(event.meta().occurred_at());
      break;
    case v1::CatalogEvent::kSponsorProgramUpdated:
      view.terms = event.sponsor_program_updated().terms();
      break;
    case v1::CatalogEvent::kSponsorProgramPaused:
      view.paused = true;
      view.closed = event.sponsor_program_paused().closed();
      break;
    case v1::CatalogEvent::kSponsorProgramResumed:
      view.paused = false;
      break;
    default:
      break;
  }
}

void CatalogReadModel::RecordReview(const std::string& expert_id, int stars) {
  if (stars < 1 || stars > 5) return;
  absl::MutexLock lock(&mutex_);
  RatingView& rating = ratings_[expert_id];
  rating.count += 1;
  rating.stars += stars;
  index_.SetRating(expert_id, RatingOf(expert_id));
}

void CatalogReadModel::SetOnline(const std::string& expert_id, bool online) {
  absl::MutexLock lock(&mutex_);
  if (online) {
    online_.insert(expert_id);
  } else {
    online_.erase(expert_id);
  }
  index_.SetOnline(expert_id, online);
}

double CatalogReadModel::RatingOf(const std::string& expert_id) const {
  auto found = ratings_.find(expert_id);
  double count = found == ratings_.end() ? 0 : static_cast<double>(found->second.count);
  double stars = found == ratings_.end() ? 0 : static_cast<double>(found->second.stars);
  return (rating_options_.prior_weight * rating_options_.prior_mean + stars) /
         (rating_options_.prior_weight + count);
}

v1::Rating CatalogReadModel::RatingMessage(const std::string& expert_id) const {
  v1::Rating rating;
  rating.set_score(RatingOf(expert_id));
  auto found = ratings_.find(expert_id);
  if (found != ratings_.end() && found->second.count > 0) {
    rating.set_review_count(found->second.count);
    rating.set_average_stars(static_cast<double>(found->second.stars) /
                             static_cast<double>(found->second.count));
  }
  return rating;
}

std::vector<int> CatalogReadModel::CategoryNumbers(const v1::ProfileContent& content) const {
  std::vector<int> numbers;
  for (const std::string& id : content.category_ids()) {
    auto found = category_numbers_.find(id);
    if (found != category_numbers_.end()) numbers.push_back(found->second);
  }
  return numbers;
}

absl::flat_hash_set<int> CatalogReadModel::Subtree(const std::string& category_id) const {
  absl::flat_hash_set<int> numbers;
  std::vector<std::string> pending = {category_id};
  while (!pending.empty()) {
    std::string id = std::move(pending.back());
    pending.pop_back();
    auto found = categories_.find(id);
    if (found == categories_.end() || !numbers.insert(found->second.number).second) continue;
    auto children = children_.find(id);
    if (children != children_.end()) {
      pending.insert(pending.end(), children->second.begin(), children->second.end());
    }
  }
  return numbers;
}

CatalogReadModel::Sponsorship CatalogReadModel::SponsorshipAt(absl::Time now) const {
  Sponsorship sponsorship;
  for (const auto& [id, program] : programs_) {
    if (!InEffect(program.terms, program.paused, now)) continue;
    sponsorship.programs.emplace_back(id, &program);
    for (const std::string& expert : program.terms.expert_ids()) sponsorship.experts.insert(expert);
    for (const std::string& category : program.terms.category_ids()) {
      absl::flat_hash_set<int> subtree = Subtree(category);
      sponsorship.categories.insert(subtree.begin(), subtree.end());
    }
  }
  return sponsorship;
}

bool CatalogReadModel::ProgramCovers(const ProgramView& program, const std::string& expert_id,
                                     const std::vector<int>& categories) const {
  const auto& experts = program.terms.expert_ids();
  if (std::find(experts.begin(), experts.end(), expert_id) != experts.end()) return true;
  for (const std::string& category : program.terms.category_ids()) {
    absl::flat_hash_set<int> subtree = Subtree(category);
    for (int number : categories) {
      if (subtree.contains(number)) return true;
    }
  }
  return false;
}

bool CatalogReadModel::Covers(const Sponsorship& sponsorship, const std::string& expert_id,
                              const std::vector<int>& categories) const {
  if (sponsorship.experts.contains(expert_id)) return true;
  return std::any_of(categories.begin(), categories.end(),
                     [&](int number) { return sponsorship.categories.contains(number); });
}

v1::ExpertProfile CatalogReadModel::ProfileMessage(const std::string& expert_id,
                                                   const ProfileView& view,
                                                   const Sponsorship& sponsorship) const {
  v1::ExpertProfile profile;
  profile.set_expert_id(expert_id);
  profile.set_status(view.state.status());
  profile.set_version(view.version);
  if (view.live) *profile.mutable_live() = *view.live;
  *profile.mutable_draft() = view.draft_is_live ? *view.live : view.state.draft();
  profile.set_held_change(view.state.held_change());
  profile.set_rejection_reason(view.state.rejection_reason());
  *profile.mutable_rating() = RatingMessage(expert_id);
  profile.set_online(online_.contains(expert_id));
  if (view.live) {
    std::vector<int> categories = CategoryNumbers(*view.live);
    for (const auto& [program_id, program] : sponsorship.programs) {
      if (ProgramCovers(*program, expert_id, categories)) {
        profile.add_sponsor_program_ids(program_id);
      }
    }
  }
  *profile.mutable_created_at() = view.state.created_at();
  *profile.mutable_updated_at() = ToProtoTime(view.updated_at);
  if (view.state.has_submitted_at()) *profile.mutable_submitted_at() = view.state.submitted_at();
  return profile;
}

std::optional<v1::ExpertProfile> CatalogReadModel::Profile(const std::string& expert_id,
                                                           absl::Time now) {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = profiles_.find(expert_id);
  if (found == profiles_.end()) return std::nullopt;
  return ProfileMessage(expert_id, found->second, SponsorshipAt(now));
}

absl::StatusOr<std::pair<std::vector<v1::ExpertProfile>, std::string>>
CatalogReadModel::ReviewQueue(int page_size, const std::string& after_token, absl::Time now) {
  std::pair<absl::Time, std::string> after = {absl::InfinitePast(), ""};
  if (!after_token.empty()) {
    std::optional<std::vector<std::string>> parts = paging::DecodeToken(after_token, 3);
    int64_t nanos;
    if (!parts || (*parts)[0] != "queue" || !absl::SimpleAtoi((*parts)[1], &nanos)) {
      return BadPageToken("is not a page token of ListReviewQueue");
    }
    after = {absl::FromUnixNanos(nanos), (*parts)[2]};
  }
  if (page_size <= 0) page_size = kDefaultPageSize;
  absl::ReaderMutexLock lock(&mutex_);
  Sponsorship sponsorship = SponsorshipAt(now);
  std::vector<v1::ExpertProfile> page;
  std::string next;
  for (auto it = review_queue_.upper_bound(after); it != review_queue_.end(); ++it) {
    if (static_cast<int>(page.size()) == page_size) {
      const v1::ExpertProfile& last = page.back();
      next = paging::EncodeToken(
          {"queue", absl::StrCat(absl::ToUnixNanos(FromProtoTime(last.submitted_at()))),
           last.expert_id()});
      break;
    }
    page.push_back(ProfileMessage(it->second, profiles_.at(it->second), sponsorship));
  }
  return std::make_pair(std::move(page), std::move(next));
}

absl::StatusOr<std::string> CatalogReadModel::SearchSerialized(
    const v1::SearchExpertsRequest& request, const SearchOptions& options) {
  std::optional<SearchCursor> after;
  std::vector<double> term_idf;
  if (!request.page_token().empty()) {
    std::optional<std::vector<std::string>> parts = paging::DecodeToken(request.page_token(), 5);
    if (!parts || (*parts)[0] != "search") {
      return BadPageToken("is not a page token of SearchExperts");
    }
    if ((*parts)[1] != options.fingerprint) {
      return BadPageToken("belongs to a search with other filters; keep them from page to page");
    }
    std::optional<double> key = KeyFromBits((*parts)[2]);
    if (!key) return BadPageToken("is damaged");
    after = SearchCursor{*key, (*parts)[3]};
    if (!(*parts)[4].empty()) {
      for (absl::string_view bits : absl::StrSplit((*parts)[4], ',')) {
        std::optional<double> idf = KeyFromBits(std::string(bits));
        if (!idf) return BadPageToken("is damaged");
        term_idf.push_back(*idf);
      }
    }
  }

  absl::ReaderMutexLock lock(&mutex_);
  ExpertQuery query;
  query.terms = QueryTokens(request.text());
  query.sort = request.sort() == v1::SEARCH_SORT_UNSPECIFIED ? v1::SEARCH_SORT_RELEVANCE
                                                              : request.sort();
  query.limit = request.page_size() > 0 ? request.page_size() : kDefaultPageSize;
  query.after = std::move(after);
  query.term_idf = std::move(term_idf);
  NumberSet categories;
  if (!request.category_id().empty()) {
    for (int number : Subtree(request.category_id())) {
      categories.Add(number);
      query.category_list.push_back(number);
    }
    query.filter.categories = &categories;
  }
  const std::vector<uint16_t> languages = index_.LanguagesCovered(request.language());
  if (!request.language().empty()) query.filter.languages = &languages;
  query.filter.pricing = request.pricing();
  if (request.has_min_price_per_minute()) {
    query.filter.min_price_per_minute = request.min_price_per_minute().amount_minor();
  }
  if (request.has_max_price_per_minute()) {
    query.filter.max_price_per_minute = request.max_price_per_minute().amount_minor();
  }
  query.filter.min_rating = request.min_rating();
  query.filter.online_only = request.available_now();
  Sponsorship sponsorship = SponsorshipAt(options.now);
  NumberSet sponsored_categories;
  for (int number : sponsorship.categories) sponsored_categories.Add(number);
  query.filter.sponsored_only = request.sponsored_only();
  query.filter.sponsored_categories = &sponsored_categories;
  query.filter.sponsored_experts = &sponsorship.experts;

  ExpertResults results = index_.Search(query);
  const std::vector<ExpertMatch>& matches = results.matches;
  std::string page;
  {
    google::protobuf::io::StringOutputStream stream(&page);
    google::protobuf::io::CodedOutputStream out(&stream);
    std::string extra;
    for (const ExpertMatch& match : matches) {
      const IndexedExpert& expert = *match.expert;
      if (options.hidden && options.hidden(expert.expert_id)) continue;
      // The hit's changing fields, appended to its kept bytes (two
      // serialized parts of one message make that message).
      v1::ExpertHit changing;
      *changing.mutable_rating() = RatingMessage(expert.expert_id);
      changing.set_sponsored(Covers(sponsorship, expert.expert_id, expert.categories));
      changing.set_online(expert.online);
      changing.set_relevance(match.relevance);
      extra.clear();
      changing.SerializeToString(&extra);
      out.WriteTag(kHitsTag);
      out.WriteVarint32(static_cast<uint32_t>(expert.hit.size() + extra.size()));
      out.WriteRaw(expert.hit.data(), static_cast<int>(expert.hit.size()));
      out.WriteRaw(extra.data(), static_cast<int>(extra.size()));
    }
    if (results.more && !matches.empty()) {
      std::vector<std::string> idf_bits;
      for (double idf : results.term_idf) idf_bits.push_back(KeyBits(idf));
      std::string token = paging::EncodeToken({"search", options.fingerprint,
                                           KeyBits(matches.back().key),
                                           matches.back().expert->expert_id,
                                           absl::StrJoin(idf_bits, ",")});
      out.WriteTag(kNextPageTokenTag);
      out.WriteVarint32(static_cast<uint32_t>(token.size()));
      out.WriteRaw(token.data(), static_cast<int>(token.size()));
    }
  }
  return page;
}

absl::StatusOr<v1::SearchExpertsResponse> CatalogReadModel::Search(
    const v1::SearchExpertsRequest& request, const SearchOptions& options) {
  absl::StatusOr<std::string> page = SearchSerialized(request, options);
  if (!page.ok()) return page.status();
  v1::SearchExpertsResponse response;
  if (!response.ParseFromString(*page)) return absl::InternalError("a search page did not parse");
  return response;
}

bool CatalogReadModel::IsActiveCategory(const std::string& category_id) {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = categories_.find(category_id);
  return found != categories_.end() && !found->second.retired;
}

bool CatalogReadModel::IsCategory(const std::string& category_id) {
  absl::ReaderMutexLock lock(&mutex_);
  return categories_.contains(category_id);
}

bool CatalogReadModel::HasCategories() {
  absl::ReaderMutexLock lock(&mutex_);
  return !categories_.empty();
}

absl::flat_hash_map<std::string, int64_t> CatalogReadModel::ExpertCounts() const {
  absl::flat_hash_map<std::string, int64_t> counts;
  absl::flat_hash_set<std::string> above;
  index_.ForEach([&](const IndexedExpert& expert) {
    above.clear();
    for (const std::string& id : expert.live->category_ids()) {
      std::string at = id;
      for (size_t depth = 0; !at.empty() && depth <= categories_.size(); ++depth) {
        if (!above.insert(at).second) break;
        auto found = categories_.find(at);
        if (found == categories_.end()) break;
        at = found->second.parent_id;
      }
    }
    for (const std::string& id : above) ++counts[id];
  });
  return counts;
}

v1::Category CatalogReadModel::CategoryMessage(
    const std::string& category_id, const CategoryView& view,
    const absl::flat_hash_map<std::string, int64_t>& counts) const {
  v1::Category category;
  category.set_category_id(category_id);
  category.set_name(view.name);
  category.set_parent_id(view.parent_id);
  category.set_retired(view.retired);
  std::vector<std::string> path;
  std::string at = category_id;
  for (size_t depth = 0; !at.empty() && depth <= categories_.size(); ++depth) {
    auto found = categories_.find(at);
    if (found == categories_.end()) break;
    path.push_back(found->second.name);
    at = found->second.parent_id;
  }
  for (auto name = path.rbegin(); name != path.rend(); ++name) category.add_path(*name);
  auto count = counts.find(category_id);
  category.set_expert_count(count == counts.end() ? 0 : count->second);
  return category;
}

std::optional<v1::Category> CatalogReadModel::Category(const std::string& category_id) {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = categories_.find(category_id);
  if (found == categories_.end()) return std::nullopt;
  return CategoryMessage(category_id, found->second, ExpertCounts());
}

std::vector<v1::Category> CatalogReadModel::Categories(bool include_retired) {
  absl::ReaderMutexLock lock(&mutex_);
  const absl::flat_hash_map<std::string, int64_t> counts = ExpertCounts();
  std::vector<v1::Category> out;
  std::function<void(const std::string&)> visit = [&](const std::string& parent) {
    auto children = children_.find(parent);
    if (children == children_.end()) return;
    std::vector<std::string> ids = children->second;
    std::sort(ids.begin(), ids.end(), [&](const std::string& a, const std::string& b) {
      return categories_.at(a).name < categories_.at(b).name;
    });
    for (const std::string& id : ids) {
      const CategoryView& view = categories_.at(id);
      if (view.retired && !include_retired) continue;
      out.push_back(CategoryMessage(id, view, counts));
      visit(id);
    }
  };
  visit("");
  return out;
}

v1::SponsorProgram CatalogReadModel::ProgramMessage(const std::string& program_id,
                                                    const ProgramView& view,
                                                    absl::Time now) const {
  v1::SponsorProgram program;
  program.set_program_id(program_id);
  program.set_sponsor_id(view.sponsor_id);
  *program.mutable_terms() = view.terms;
  program.set_status(view.closed   ? v1::SPONSOR_PROGRAM_STATUS_CLOSED
                     : view.paused ? v1::SPONSOR_PROGRAM_STATUS_PAUSED
                                   : v1::SPONSOR_PROGRAM_STATUS_ACTIVE);
  program.set_in_effect(InEffect(view.terms, view.paused, now));
  program.set_version(view.version);
  *program.mutable_created_at() = ToProtoTime(view.created_at);
  return program;
}

std::optional<v1::SponsorProgram> CatalogReadModel::Program(const std::string& program_id,
                                                            absl::Time now) {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = programs_.find(program_id);
  if (found == programs_.end()) return std::nullopt;
  return ProgramMessage(program_id, found->second, now);
}

absl::StatusOr<std::pair<std::vector<v1::SponsorProgram>, std::string>>
CatalogReadModel::Programs(const std::function<bool(const v1::SponsorProgram&)>& visible,
                           const std::string& covering_expert, int page_size,
                           const std::string& after_token, absl::Time now) {
  std::string after;
  if (!after_token.empty()) {
    std::optional<std::vector<std::string>> parts = paging::DecodeToken(after_token, 2);
    if (!parts || (*parts)[0] != "programs") {
      return BadPageToken("is not a page token of ListSponsorPrograms");
    }
    after = (*parts)[1];
  }
  if (page_size <= 0) page_size = kDefaultPageSize;
  absl::ReaderMutexLock lock(&mutex_);
  std::vector<int> expert_categories;
  if (!covering_expert.empty()) {
    auto profile = profiles_.find(covering_expert);
    if (profile != profiles_.end() && profile->second.live) {
      expert_categories = CategoryNumbers(*profile->second.live);
    }
  }
  std::vector<v1::SponsorProgram> page;
  std::string next;
  for (auto it = programs_.upper_bound(after); it != programs_.end(); ++it) {
    if (!covering_expert.empty() &&
        !ProgramCovers(it->second, covering_expert, expert_categories)) {
      continue;
    }
    v1::SponsorProgram program = ProgramMessage(it->first, it->second, now);
    if (!visible(program)) continue;
    if (static_cast<int>(page.size()) == page_size) {
      next = paging::EncodeToken({"programs", page.back().program_id()});
      break;
    }
    page.push_back(std::move(program));
  }
  return std::make_pair(std::move(page), std::move(next));
}

size_t CatalogReadModel::published() {
  absl::ReaderMutexLock lock(&mutex_);
  return index_.size();
}

std::vector<std::string> CatalogReadModel::ProgramIdsOf(const std::string& sponsor_id) {
  absl::ReaderMutexLock lock(&mutex_);
  std::vector<std::string> ids;
  for (const auto& [id, view] : programs_) {
    if (view.sponsor_id == sponsor_id) ids.push_back(id);
  }
  return ids;
}

}  // namespace helpline::catalog
