#include "services/matching/domain/read_model.h"

#include <algorithm>
#include <utility>

#include "services/matching/domain/matching_domain.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::matching {

MatchingReadModel::MatchingReadModel(RankingOptions ranking, absl::Duration closed_retention)
    : catalog_projection_(*this),
      sessions_projection_(*this),
      pool_(ranking),
      requests_(closed_retention) {}

void MatchingReadModel::SessionsFeed::Apply(const sessions::v1::SessionsEvent& event) {
  absl::MutexLock lock(&model_.mutex_);
  switch (event.body_case()) {
    case sessions::v1::SessionsEvent::kSessionNoShow: {
      const sessions::v1::SessionNoShow& no_show = event.session_no_show();
      for (const std::string& absent : no_show.absent()) {
        if (absent == no_show.expert_id()) model_.pool_.RecordNoShow(absent);
      }
      break;
    }
    case sessions::v1::SessionsEvent::kReviewSubmitted:
      model_.pool_.RecordReview(event.review_submitted().expert_id(),
                                event.review_submitted().stars());
      model_.Changed();
      return;
    case sessions::v1::SessionsEvent::kSessionCreated:
    case sessions::v1::SessionsEvent::kParticipantJoined:
    case sessions::v1::SessionsEvent::kSessionEnded:
    case sessions::v1::SessionsEvent::kSessionCancelled:
      break;
    default:
      return;
  }
  if (std::optional<std::string> expert = model_.calls_.Apply(event)) {
    // The match's reservation in Redis is no longer needed.
    const std::string& session_id = event.meta().aggregate_id();
    if (std::string offer = model_.requests_.MatchOfferOf(session_id); !offer.empty()) {
      model_.reservation_changes_.push_back({*expert, offer, false});
    }
  }
  model_.Changed();
}

void MatchingReadModel::CatalogFeed::Apply(const catalog::v1::CatalogEvent& event) {
  absl::MutexLock lock(&model_.mutex_);
  model_.pool_.ApplyCatalog(event);
  model_.Changed();
}

void MatchingReadModel::Apply(const v1::MatchingEvent& event) {
  std::vector<std::string> touched;
  {
    absl::MutexLock lock(&mutex_);
    pool_.ApplyMatching(event);
    if (std::string id = HelpRequestOf(event.meta().aggregate_id()); !id.empty()) {
      requests_.Apply(id, event, touched, reservation_changes_);
    } else {
      bookings_.Apply(event);
    }
  }
  ChangedAndTell(std::move(touched));
}

void MatchingReadModel::Changed() {
  absl::MutexLock lock(&changes_mutex_);
  ++changes_;
  changed_.SignalAll();
}

void MatchingReadModel::ChangedAndTell(std::vector<std::string> touched) {
  Changed();
  if (!touched.empty() && on_change_) on_change_(touched);
}

void MatchingReadModel::OnChange(std::function<void(const std::vector<std::string>&)> listener) {
  on_change_ = std::move(listener);
}

std::optional<v1::HelpRequest> MatchingReadModel::Request(const std::string& id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return requests_.Request(id);
}

int MatchingReadModel::OpenRequestsOf(const std::string& person_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return requests_.OpenRequestsOf(person_id);
}

std::vector<std::string> MatchingReadModel::OpenRequestIdsOf(const std::string& person_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return requests_.OpenRequestIdsOf(person_id);
}

std::optional<std::string> MatchingReadModel::RequestOfOffer(const std::string& offer_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return requests_.RequestOfOffer(offer_id);
}

std::optional<v1::Offer> MatchingReadModel::OpenOffer(const std::string& expert_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return requests_.OpenOffer(expert_id);
}

std::vector<WaitingRequest> MatchingReadModel::WaitingRequests() const {
  absl::ReaderMutexLock lock(&mutex_);
  std::vector<WaitingRequest> waiting;
  for (const v1::HelpRequest* view : requests_.Waiting()) {
    WaitingRequest request;
    request.help_request_id = view->help_request_id();
    request.query.person_id = view->person_id();
    request.query.category_id = view->category_id();
    request.query.language = view->language();
    request.query.budget = view->budget();
    request.query.max_minutes = view->max_minutes();
    request.query.sponsor_program_id = view->sponsor_program_id();
    request.asked_at = FromProtoTime(view->created_at());
    request.offers_made = view->offers_made();
    waiting.push_back(std::move(request));
  }
  return waiting;
}

std::vector<Candidate> MatchingReadModel::CandidatesFor(const WaitingRequest& request,
                                                        absl::Time now, size_t limit) const {
  absl::ReaderMutexLock lock(&mutex_);
  const std::vector<std::string>* before = requests_.OfferedExperts(request.help_request_id);
  if (before == nullptr) return {};
  CandidateQuery query = request.query;
  query.excluded = [&](const std::string& expert_id) {
    return requests_.HasOpenOffer(expert_id) || calls_.InCall(expert_id) ||
           std::find(before->begin(), before->end(), expert_id) != before->end();
  };
  return pool_.Rank(query, now, limit);
}

std::vector<ReservationChange> MatchingReadModel::TakeReservationChanges() {
  absl::MutexLock lock(&mutex_);
  return std::exchange(reservation_changes_, {});
}

std::optional<v1::Booking> MatchingReadModel::Booking(const std::string& booking_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return bookings_.Booking(booking_id);
}

std::vector<v1::Booking> MatchingReadModel::BookingsOf(const std::string& user_id, absl::Time now,
                                                       bool all) const {
  absl::ReaderMutexLock lock(&mutex_);
  return bookings_.BookingsOf(user_id, now, all);
}

bool MatchingReadModel::SessionUnderWay(const std::string& session_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return calls_.UnderWay(session_id);
}

bool MatchingReadModel::ActiveCategory(const std::string& category_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  return pool_.ActiveCategory(category_id);
}

std::optional<ExpertEntry> MatchingReadModel::Expert(const std::string& expert_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  const ExpertEntry* expert = pool_.Expert(expert_id);
  if (expert == nullptr) return std::nullopt;
  return *expert;
}

std::optional<SponsorProgramEntry> MatchingReadModel::Program(const std::string& program_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  const SponsorProgramEntry* program = pool_.Program(program_id);
  if (program == nullptr) return std::nullopt;
  return *program;
}

bool MatchingReadModel::Covers(const SponsorProgramEntry& program,
                               const ExpertEntry& expert) const {
  absl::ReaderMutexLock lock(&mutex_);
  return pool_.Covers(program, expert);
}

size_t MatchingReadModel::available_experts() const {
  absl::ReaderMutexLock lock(&mutex_);
  return pool_.available_count();
}

uint64_t MatchingReadModel::changes() const {
  absl::MutexLock lock(&changes_mutex_);
  return changes_;
}

uint64_t MatchingReadModel::WaitForChange(uint64_t seen, absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&changes_mutex_);
  while (changes_ <= seen && !changed_.WaitWithDeadline(&changes_mutex_, deadline)) {
  }
  return changes_;
}

}  // namespace helpline::matching
