#include "services/matching/domain/read_model.h"

#include <algorithm>

#include "services/matching/domain/matching_domain.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::matching {

MatchingReadModel::MatchingReadModel(RankingOptions ranking, absl::Duration closed_retention)
    : closed_retention_(closed_retention),
      catalog_projection_(*this),
      sessions_projection_(*this),
      pool_(ranking) {}

void MatchingReadModel::SessionsFeed::Apply(const sessions::v1::SessionsEvent& event) {
  const std::string& session_id = event.meta().aggregate_id();
  absl::MutexLock lock(&model_.mutex_);
  switch (event.body_case()) {
    case sessions::v1::SessionsEvent::kSessionCreated:
      model_.session_experts_[session_id] = event.session_created().expert_id();
      // A match's expert is in the call from now; a booking's once someone joins.
      if (event.session_created().kind() == sessions::v1::SESSION_KIND_HELP_NOW) {
        model_.InCall(session_id, true);
      }
      break;
    case sessions::v1::SessionsEvent::kParticipantJoined:
      model_.InCall(session_id, true);
      break;
    case sessions::v1::SessionsEvent::kSessionNoShow: {
      const sessions::v1::SessionNoShow& no_show = event.session_no_show();
      for (const std::string& absent : no_show.absent()) {
        if (absent == no_show.expert_id()) model_.pool_.RecordNoShow(absent);
      }
      model_.SessionOver(session_id);
      break;
    }
    case sessions::v1::SessionsEvent::kSessionEnded:
    case sessions::v1::SessionsEvent::kSessionCancelled:
      model_.SessionOver(session_id);
      break;
    case sessions::v1::SessionsEvent::kReviewSubmitted:
      model_.pool_.RecordReview(event.review_submitted().expert_id(),
                                event.review_submitted().stars());
      break;
    default:
      return;
  }
  model_.Changed();
}

void MatchingReadModel::InCall(const std::string& session_id, bool in_call) {
  auto expert = session_experts_.find(session_id);
  if (expert == session_experts_.end()) return;
  bool& counted = sessions_in_call_[session_id];
  if (counted == in_call) return;
  counted = in_call;
  int& calls = experts_in_call_[expert->second];
  calls += in_call ? 1 : -1;
  if (calls <= 0) experts_in_call_.erase(expert->second);
}

void MatchingReadModel::SessionOver(const std::string& session_id) {
  InCall(session_id, false);
  sessions_in_call_.erase(session_id);
  auto expert = session_experts_.find(session_id);
  // The match's reservation in Redis is no longer needed.
  auto request = requests_.find(session_id);
  if (expert != session_experts_.end() && request != requests_.end() &&
      !request->second.match_offer_id.empty()) {
    reservation_changes_.push_back({expert->second, request->second.match_offer_id, false});
  }
  if (expert != session_experts_.end()) session_experts_.erase(expert);
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
      ApplyRequestEvent(id, event);
      ForgetClosedBefore(FromProtoTime(event.meta().occurred_at()) - closed_retention_);
    } else {
      ApplyBookingEvent(event);
    }
    touched.swap(touched_);
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

std::string MatchingReadModel::RequestKey(const std::string& help_request_id) {
  return "request/" + help_request_id;
}

std::string MatchingReadModel::LineKey(const std::string& category_id) {
  return "line/" + category_id;
}

std::string MatchingReadModel::OffersKey(const std::string& expert_id) {
  return "offers/" + expert_id;
}

void MatchingReadModel::CloseOffer(RequestRecord& record, bool matched) {
  if (!record.view.has_offer()) return;
  const v1::Offer& offer = record.view.offer();
  touched_.push_back(OffersKey(offer.expert_id()));
  auto open = open_offers_.find(offer.expert_id());
  if (open != open_offers_.end() && open->second == offer.offer_id()) open_offers_.erase(open);
  reservation_changes_.push_back({offer.expert_id(), offer.offer_id(), matched});
  record.view.clear_offer();
}

void MatchingReadModel::ForgetClosedBefore(absl::Time cutoff) {
  while (!closed_.empty() && closed_.front().first < cutoff) {
    auto found = requests_.find(closed_.front().second);
    if (found != requests_.end()) {
      for (const std::string& offer_id : found->second.offer_ids) offer_requests_.erase(offer_id);
      requests_.erase(found);
    }
    closed_.pop_front();
  }
}

void MatchingReadModel::LeaveLine(const RequestRecord& record, absl::Time closed_at) {
  std::pair<absl::Time, std::string> key{FromProtoTime(record.view.created_at()),
                                         record.view.help_request_id()};
  waiting_.erase(key);
  closed_.emplace_back(closed_at, key.second);
  auto open = open_requests_of_.find(record.view.person_id());
  if (open != open_requests_of_.end() && --open->second <= 0) open_requests_of_.erase(open);
  touched_.push_back(LineKey(record.view.category_id()));
  auto line = lines_.find(record.view.category_id());
  if (line == lines_.end()) return;
  line->second.erase(key);
  if (line->second.empty()) lines_.erase(line);
}

void MatchingReadModel::ApplyRequestEvent(const std::string& id, const v1::MatchingEvent& event) {
  RequestRecord& record = requests_[id];
  v1::HelpRequest& view = record.view;
  view.set_version(event.meta().aggregate_version());
  touched_.push_back(RequestKey(id));
  std::pair<absl::Time, std::string> key{FromProtoTime(view.created_at()), id};
  switch (event.body_case()) {
    case v1::MatchingEvent::kHelpRequested: {
      const v1::HelpRequested& asked = event.help_requested();
      view.set_help_request_id(id);
      view.set_person_id(asked.person_id());
      view.set_category_id(asked.category_id());
      view.set_language(asked.language());
      view.set_description(asked.description());
      *view.mutable_budget() = asked.budget();
      view.set_max_minutes(asked.max_minutes());
      view.set_sponsor_program_id(asked.sponsor_program_id());
      view.set_status(v1::HELP_REQUEST_STATUS_WAITING);
      *view.mutable_created_at() = event.meta().occurred_at();
      *view.mutable_expires_at() = asked.expires_at();
      key.first = FromProtoTime(view.created_at());
      Line& line = lines_[asked.category_id()];
      // Joining anywhere but at the end moves the requests behind.
      if (std::next(line.insert(key).first) != line.end()) {
        touched_.push_back(LineKey(asked.category_id()));
      }
      waiting_.insert(key);
      ++open_requests_of_[asked.person_id()];
      break;
    }
    case v1::MatchingEvent::kExpertOffered: {
      const v1::ExpertOffered& offered = event.expert_offered();
      view.set_status(v1::HELP_REQUEST_STATUS_OFFERED);
      view.set_offers_made(view.offers_made() + 1);
      v1::Offer& offer = *view.mutable_offer();
      offer.set_offer_id(offered.offer_id());
      offer.set_help_request_id(id);
      offer.set_expert_id(offered.expert_id());
      offer.set_category_id(view.category_id());
      offer.set_language(view.language());
      offer.set_description(view.description());
      *offer.mutable_price() = offered.price();
      offer.set_max_minutes(offered.max_minutes());
      offer.set_sponsor_program_id(view.sponsor_program_id());
      *offer.mutable_offered_at() = event.meta().occurred_at();
      *offer.mutable_expires_at() = offered.expires_at();
      record.offered_experts.push_back(offered.expert_id());
      record.offer_ids.push_back(offered.offer_id());
      offer_requests_[offered.offer_id()] = id;
      open_offers_[offered.expert_id()] = offered.offer_id();
      touched_.push_back(OffersKey(offered.expert_id()));
      waiting_.erase(key);
      break;
    }
    case v1::MatchingEvent::kOfferDeclined:
    case v1::MatchingEvent::kOfferExpired:
      view.set_status(v1::HELP_REQUEST_STATUS_WAITING);
      CloseOffer(record, false);
      waiting_.insert(key);
      break;
    case v1::MatchingEvent::kMatchMade:
      view.set_status(v1::HELP_REQUEST_STATUS_MATCHED);
      *view.mutable_match() = event.match_made().match();
      record.match_offer_id = event.match_made().offer_id();
      CloseOffer(record, true);
      LeaveLine(record, FromProtoTime(event.meta().occurred_at()));
      break;
    case v1::MatchingEvent::kHelpRequestCancelled:
      view.set_status(v1::HELP_REQUEST_STATUS_CANCELLED);
      CloseOffer(record, false);
      LeaveLine(record, FromProtoTime(event.meta().occurred_at()));
      break;
    case v1::MatchingEvent::kHelpRequestExpired:
      view.set_status(v1::HELP_REQUEST_STATUS_EXPIRED);
      CloseOffer(record, false);
      LeaveLine(record, FromProtoTime(event.meta().occurred_at()));
      break;
    default:
      break;
  }
}

void MatchingReadModel::ApplyBookingEvent(const v1::MatchingEvent& event) {
  if (event.has_booking_confirmed()) {
    const v1::Booking& booking = event.booking_confirmed().booking();
    auto [it, added] = bookings_.try_emplace(booking.booking_id(), booking);
    if (!added) return;
    bookings_of_[booking.person_id()].push_back(booking.booking_id());
    bookings_of_[booking.expert_id()].push_back(booking.booking_id());
  } else if (event.has_booking_cancelled()) {
    const v1::BookingCancelled& cancelled = event.booking_cancelled();
    auto found = bookings_.find(cancelled.booking_id());
    if (found == bookings_.end()) return;
    found->second.set_status(v1::BOOKING_STATUS_CANCELLED);
    found->second.set_cancelled_by(cancelled.cancelled_by());
    found->second.set_late_cancellation(cancelled.late());
    found->second.set_cancel_reason(cancelled.reason());
  }
}

std::optional<v1::HelpRequest> MatchingReadModel::Request(const std::string& id) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = requests_.find(id);
  if (found == requests_.end() || found->second.view.help_request_id().empty()) return std::nullopt;
  v1::HelpRequest view = found->second.view;
  if (view.status() == v1::HELP_REQUEST_STATUS_WAITING ||
      view.status() == v1::HELP_REQUEST_STATUS_OFFERED) {
    auto line = lines_.find(view.category_id());
    if (line != lines_.end()) {
      int position = 1;
      for (const auto& [opened, other] : line->second) {
        if (other == id) break;
        ++position;
      }
      view.set_position(position);
    }
  }
  return view;
}

int MatchingReadModel::OpenRequestsOf(const std::string& person_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = open_requests_of_.find(person_id);
  return found == open_requests_of_.end() ? 0 : found->second;
}

std::vector<std::string> MatchingReadModel::OpenRequestIdsOf(const std::string& person_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  std::vector<std::string> ids;
  if (!open_requests_of_.contains(person_id)) return ids;
  for (const auto& [id, record] : requests_) {
    const v1::HelpRequestStatus status = record.view.status();
    if (record.view.person_id() == person_id && (status == v1::HELP_REQUEST_STATUS_WAITING ||
                                                 status == v1::HELP_REQUEST_STATUS_OFFERED)) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::optional<std::string> MatchingReadModel::RequestOfOffer(const std::string& offer_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = offer_requests_.find(offer_id);
  if (found == offer_requests_.end()) return std::nullopt;
  return found->second;
}

std::optional<v1::Offer> MatchingReadModel::OpenOffer(const std::string& expert_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto open = open_offers_.find(expert_id);
  if (open == open_offers_.end()) return std::nullopt;
  auto request = requests_.find(offer_requests_.at(open->second));
  if (request == requests_.end() || !request->second.view.has_offer()) return std::nullopt;
  return request->second.view.offer();
}

std::vector<WaitingRequest> MatchingReadModel::WaitingRequests() const {
  absl::ReaderMutexLock lock(&mutex_);
  std::vector<WaitingRequest> waiting;
  for (const auto& [opened, id] : waiting_) {
    const v1::HelpRequest& view = requests_.at(id).view;
    WaitingRequest request;
    request.help_request_id = id;
    request.query.person_id = view.person_id();
    request.query.category_id = view.category_id();
    request.query.language = view.language();
    request.query.budget = view.budget();
    request.query.max_minutes = view.max_minutes();
    request.query.sponsor_program_id = view.sponsor_program_id();
    waiting.push_back(std::move(request));
  }
  return waiting;
}

std::vector<Candidate> MatchingReadModel::CandidatesFor(const WaitingRequest& request,
                                                        absl::Time now, size_t limit) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = requests_.find(request.help_request_id);
  if (found == requests_.end()) return {};
  const std::vector<std::string>& before = found->second.offered_experts;
  CandidateQuery query = request.query;
  query.excluded = [&](const std::string& expert_id) {
    return open_offers_.contains(expert_id) || experts_in_call_.contains(expert_id) ||
           std::find(before.begin(), before.end(), expert_id) != before.end();
  };
  return pool_.Rank(query, now, limit);
}

std::vector<ReservationChange> MatchingReadModel::TakeReservationChanges() {
  absl::MutexLock lock(&mutex_);
  return std::exchange(reservation_changes_, {});
}

std::optional<v1::Booking> MatchingReadModel::Booking(const std::string& booking_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = bookings_.find(booking_id);
  if (found == bookings_.end()) return std::nullopt;
  return found->second;
}

std::vector<v1::Booking> MatchingReadModel::BookingsOf(const std::string& user_id, absl::Time now,
                                                       bool all) const {
  std::vector<v1::Booking> out;
  {
    absl::ReaderMutexLock lock(&mutex_);
    auto ids = bookings_of_.find(user_id);
    if (ids == bookings_of_.end()) return out;
    for (const std::string& id : ids->second) {
      const v1::Booking& booking = bookings_.at(id);
      if (!all && (booking.status() != v1::BOOKING_STATUS_CONFIRMED ||
                   FromProtoTime(booking.end()) <= now)) {
        continue;
      }
      out.push_back(booking);
    }
  }
  std::sort(out.begin(), out.end(), [](const v1::Booking& a, const v1::Booking& b) {
    absl::Time a_start = FromProtoTime(a.start()), b_start = FromProtoTime(b.start());
    return a_start != b_start ? a_start < b_start : a.booking_id() < b.booking_id();
  });
  return out;
}

bool MatchingReadModel::SessionUnderWay(const std::string& session_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = sessions_in_call_.find(session_id);
  return found != sessions_in_call_.end() && found->second;
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
