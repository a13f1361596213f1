#include "services/matching/domain/help_request_lines.h"

#include <algorithm>

#include "services/runtime/core/proto_time.h"

namespace helpline::matching {

std::string HelpRequestLines::RequestKey(const std::string& help_request_id) {
  return "request/" + help_request_id;
}

std::string HelpRequestLines::LineKey(const std::string& category_id) {
  return "line/" + category_id;
}

std::string HelpRequestLines::OffersKey(const std::string& expert_id) {
  return "offers/" + expert_id;
}

void HelpRequestLines::CloseOffer(RequestRecord& record, bool matched,
                                  std::vector<std::string>& touched,
                                  std::vector<ReservationChange>& reservations) {
  if (!record.view.has_offer()) return;
  const v1::Offer& offer = record.view.offer();
  touched.push_back(OffersKey(offer.expert_id()));
  auto open = open_offers_.find(offer.expert_id());
  if (open != open_offers_.end() && open->second == offer.offer_id()) open_offers_.erase(open);
  reservations.push_back({offer.expert_id(), offer.offer_id(), matched});
  record.view.clear_offer();
}

void HelpRequestLines::ForgetClosedBefore(absl::Time cutoff) {
  while (!closed_.empty() && closed_.front().first < cutoff) {
    auto found = requests_.find(closed_.front().second);
    if (found != requests_.end()) {
      for (const std::string& offer_id : found->second.offer_ids) offer_requests_.erase(offer_id);
      requests_.erase(found);
    }
    closed_.pop_front();
  }
}

void HelpRequestLines::LeaveLine(const RequestRecord& record, absl::Time closed_at,
                                 std::vector<std::string>& touched) {
  std::pair<absl::Time, std::string> key{FromProtoTime(record.view.created_at()),
                                         record.view.help_request_id()};
  waiting_.erase(key);
  closed_.emplace_back(closed_at, key.second);
  auto open = open_requests_of_.find(record.view.person_id());
  if (open != open_requests_of_.end() && --open->second <= 0) open_requests_of_.erase(open);
  touched.push_back(LineKey(record.view.category_id()));
  auto line = lines_.find(record.view.category_id());
  if (line == lines_.end()) return;
  line->second.erase(key);
  if (line->second.empty()) lines_.erase(line);
}

void HelpRequestLines::Apply(const std::string& id, const v1::MatchingEvent& event,
                             std::vector<std::string>& touched,
                             std::vector<ReservationChange>& reservations) {
  RequestRecord& record = requests_[id];
  v1::HelpRequest& view = record.view;
  view.set_version(event.meta().aggregate_version());
  touched.push_back(RequestKey(id));
  std::pair<absl::Time, std::string> key{FromProtoTime(view.created_at()), id};
  const absl::Time at = FromProtoTime(event.meta().occurred_at());
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
        touched.push_back(LineKey(asked.category_id()));
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
      touched.push_back(OffersKey(offered.expert_id()));
      waiting_.erase(key);
      break;
    }
    case v1::MatchingEvent::kOfferDeclined:
    case v1::MatchingEvent::kOfferExpired:
      view.set_status(v1::HELP_REQUEST_STATUS_WAITING);
      CloseOffer(record, false, touched, reservations);
      waiting_.insert(key);
      break;
    case v1::MatchingEvent::kMatchMade:
      view.set_status(v1::HELP_REQUEST_STATUS_MATCHED);
      *view.mutable_match() = event.match_made().match();
      record.match_offer_id = event.match_made().offer_id();
      CloseOffer(record, true, touched, reservations);
      LeaveLine(record, at, touched);
      break;
    case v1::MatchingEvent::kHelpRequestCancelled:
      view.set_status(v1::HELP_REQUEST_STATUS_CANCELLED);
      CloseOffer(record, false, touched, reservations);
      LeaveLine(record, at, touched);
      break;
    case v1::MatchingEvent::kHelpRequestExpired:
      view.set_status(v1::HELP_REQUEST_STATUS_EXPIRED);
      CloseOffer(record, false, touched, reservations);
      LeaveLine(record, at, touched);
      break;
    default:
      break;
  }
  ForgetClosedBefore(at - closed_retention_);
}

std::optional<v1::HelpRequest> HelpRequestLines::Request(const std::string& id) const {
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

int HelpRequestLines::OpenRequestsOf(const std::string& person_id) const {
  auto found = open_requests_of_.find(person_id);
  return found == open_requests_of_.end() ? 0 : found->second;
}

std::vector<std::string> HelpRequestLines::OpenRequestIdsOf(const std::string& person_id) const {
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

std::optional<std::string> HelpRequestLines::RequestOfOffer(const std::string& offer_id) const {
  auto found = offer_requests_.find(offer_id);
  if (found == offer_requests_.end()) return std::nullopt;
  return found->second;
}

std::optional<v1::Offer> HelpRequestLines::OpenOffer(const std::string& expert_id) const {
  auto open = open_offers_.find(expert_id);
  if (open == open_offers_.end()) return std::nullopt;
  auto request = requests_.find(offer_requests_.at(open->second));
  if (request == requests_.end() || !request->second.view.has_offer()) return std::nullopt;
  return request->second.view.offer();
}

std::vector<const v1::HelpRequest*> HelpRequestLines::Waiting() const {
  std::vector<const v1::HelpRequest*> waiting;
  for (const auto& [opened, id] : waiting_) waiting.push_back(&requests_.at(id).view);
  return waiting;
}

const std::vector<std::string>* HelpRequestLines::OfferedExperts(const std::string& id) const {
  auto found = requests_.find(id);
  return found == requests_.end() ? nullptr : &found->second.offered_experts;
}

std::string HelpRequestLines::MatchOfferOf(const std::string& id) const {
  auto found = requests_.find(id);
  return found == requests_.end() ? "" : found->second.match_offer_id;
}

}  // namespace helpline::matching
