#include "tools/whatif/recording.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "services/runtime/core/proto_time.h"

namespace helpline::whatif {

void Recording::Saw(absl::Time at) {
  ++events_;
  latest_ = std::max(latest_, at);
}

RecordedRequest* Recording::Request(const std::string& id) {
  auto found = request_index_.find(id);
  return found == request_index_.end() ? nullptr : &requests_[found->second];
}

namespace {

PoolInput InputOf(const runtime::v1::EventMeta& meta, PoolInput::Kind kind) {
  PoolInput input;
  input.at = FromProtoTime(meta.occurred_at());
  input.kind = kind;
  input.aggregate_id = meta.aggregate_id();
  input.version = meta.aggregate_version();
  return input;
}

}  // namespace

void Recording::Apply(const catalog::v1::CatalogEvent& event) {
  const absl::Time at = FromProtoTime(event.meta().occurred_at());
  Saw(at);
  PoolInput input = InputOf(event.meta(), PoolInput::Kind::kCatalog);
  input.catalog = event;
  pool_inputs_.push_back(std::move(input));
}

void Recording::Apply(const matching::v1::MatchingEvent& event) {
  using matching::v1::MatchingEvent;
  const absl::Time at = FromProtoTime(event.meta().occurred_at());
  const std::string& aggregate = event.meta().aggregate_id();
  Saw(at);
  // An offer's end: how its expert answered, unless the request ended first.
  auto answered = [&](const std::string& offer_id, bool accepted, bool in_time) {
    auto open = open_offers_.find(offer_id);
    if (open == open_offers_.end()) return;
    AnswerHistory& history = answers_[open->second.expert_id];
    ++history.offers;
    if (in_time) {
      // Replicas' clocks may disagree by a little: never a negative time.
      history.answer_times.push_back(std::max(absl::ZeroDuration(), at - open->second.at));
      ++(accepted ? history.accepted : history.declined);
    }
    open_offers_.erase(open);
  };
  switch (event.body_case()) {
    case MatchingEvent::kExpertOffered:
    case MatchingEvent::kOfferDeclined:
    case MatchingEvent::kOfferExpired:
    case MatchingEvent::kMatchMade: {
      PoolInput input = InputOf(event.meta(), PoolInput::Kind::kOfferOutcome);
      input.matching = event;
      pool_inputs_.push_back(std::move(input));
      break;
    }
    default:
      break;
  }
  switch (event.body_case()) {
    case MatchingEvent::kExpertWentOnline:
    case MatchingEvent::kExpertStatusChanged:
    case MatchingEvent::kExpertWentOffline: {
      PoolInput input = InputOf(event.meta(), PoolInput::Kind::kPresence);
      input.matching = event;
      pool_inputs_.push_back(std::move(input));
      break;
    }
    case MatchingEvent::kHelpRequested: {
      const matching::v1::HelpRequested& asked = event.help_requested();
      RecordedRequest request;
      request.id = aggregate;
      request.asked_at = at;
      request.query.person_id = asked.person_id();
      request.query.category_id = asked.category_id();
      request.query.language = asked.language();
      request.query.budget = asked.budget();
      request.query.max_minutes = asked.max_minutes();
      request.query.sponsor_program_id = asked.sponsor_program_id();
      request.expires_at = FromProtoTime(asked.expires_at());
      request_index_[aggregate] = requests_.size();
      requests_.push_back(std::move(request));
      break;
    }
    case MatchingEvent::kExpertOffered: {
      const matching::v1::ExpertOffered& offered = event.expert_offered();
      open_offers_[offered.offer_id()] = {offered.expert_id(), at};
      if (offered.has_expires_at() && FromProtoTime(offered.expires_at()) > at) {
        ++offer_lengths_ms_[absl::ToInt64Milliseconds(FromProtoTime(offered.expires_at()) - at)];
      }
      offers_by_request_[aggregate].push_back(offered.expert_id());
      if (RecordedRequest* request = Request(aggregate)) ++request->offers;
      break;
    }
    case MatchingEvent::kOfferDeclined:
      answered(event.offer_declined().offer_id(), false, true);
      break;
    case MatchingEvent::kOfferExpired:
      answered(event.offer_expired().offer_id(), false, false);
      break;
    case MatchingEvent::kMatchMade: {
      answered(event.match_made().offer_id(), true, true);
      if (RecordedRequest* request = Request(aggregate)) {
        request->ending = RecordedRequest::Ending::kMatched;
        request->waited = FromProtoDuration(event.match_made().waited());
        request->session_id = event.match_made().match().match_id();
      }
      RecordedSessionMoney& money = sessions_[event.match_made().match().match_id()];
      money.expert_id = event.match_made().match().expert_id();
      money.category_id = event.match_made().match().category_id();
      money.started_at = at;
      break;
    }
    case MatchingEvent::kHelpRequestCancelled:
      open_offers_.erase(event.help_request_cancelled().offer_id());
      if (RecordedRequest* request = Request(aggregate)) {
        request->ending = RecordedRequest::Ending::kCancelled;
        request->cancelled_at = at;
      }
      break;
    case MatchingEvent::kHelpRequestExpired:
      open_offers_.erase(event.help_request_expired().offer_id());
      if (RecordedRequest* request = Request(aggregate)) {
        request->ending = RecordedRequest::Ending::kExpired;
      }
      break;
    case MatchingEvent::kBookingConfirmed: {
      const matching::v1::Booking& confirmed = event.booking_confirmed().booking();
      RecordedBooking booking;
      booking.id = confirmed.booking_id();
      booking.expert_id = confirmed.expert_id();
      booking.start = FromProtoTime(confirmed.start());
      booking.price = confirmed.price();
      booking.max_minutes = confirmed.max_minutes();
      booking.sponsor_program_id = confirmed.sponsor_program_id();
      booking_index_[booking.id] = bookings_.size();
      bookings_.push_back(std::move(booking));
      RecordedSessionMoney& money = sessions_[confirmed.booking_id()];
      money.expert_id = confirmed.expert_id();
      money.booked = true;
      money.started_at = FromProtoTime(confirmed.start());
      break;
    }
    case MatchingEvent::kBookingCancelled: {
      const matching::v1::BookingCancelled& cancelled = event.booking_cancelled();
      auto found = booking_index_.find(cancelled.booking_id());
      if (found == booking_index_.end()) break;
      RecordedBooking& booking = bookings_[found->second];
      booking.cancelled = true;
      booking.late_cancellation_by_person = cancelled.late() && cancelled.cancelled_by() == "person";
      booking.cancelled_at = at;
      break;
    }
    default:
      break;
  }
}

void Recording::Apply(const sessions::v1::SessionsEvent& event) {
  using sessions::v1::SessionsEvent;
  const absl::Time at = FromProtoTime(event.meta().occurred_at());
  Saw(at);
  const std::string& session = event.meta().aggregate_id();
  switch (event.body_case()) {
    case SessionsEvent::kSessionCreated: {
      const sessions::v1::SessionCreated& created = event.session_created();
      RecordedSessionMoney& money = sessions_[session];
      money.expert_id = created.expert_id();
      money.category_id = created.category_id();
      money.sponsor_program_id = created.sponsor_program_id();
      break;
    }
    case SessionsEvent::kSessionEnded: {
      const sessions::v1::SessionEnded& ended = event.session_ended();
      RecordedSessionMoney& money = sessions_[session];
      money.ended_at = FromProtoTime(ended.at());
      money.billable = FromProtoDuration(ended.billing().billable());
      if (money.category_id.empty()) money.category_id = ended.category_id();
      break;
    }
    case SessionsEvent::kRefundRequested:
      sessions_[session].refund_asked_at = at;
      break;
    case SessionsEvent::kReviewSubmitted: {
      PoolInput input = InputOf(event.meta(), PoolInput::Kind::kReview);
      input.expert_id = event.review_submitted().expert_id();
      input.stars = event.review_submitted().stars();
      pool_inputs_.push_back(std::move(input));
      break;
    }
    default:
      break;
  }
}

void Recording::Apply(const payments::v1::PaymentsEvent& event) {
  using payments::v1::PaymentsEvent;
  Saw(FromProtoTime(event.meta().occurred_at()));
  switch (event.body_case()) {
    case PaymentsEvent::kHoldPlaced: {
      const payments::v1::HoldSession& hold = event.hold_placed().hold();
      RecordedSessionMoney& money = sessions_[hold.session_id()];
      money.commission_bps = hold.commission_bps();
      money.sponsor_program_id = hold.sponsor_program_id();
      if (money.expert_id.empty()) money.expert_id = hold.expert_id();
      if (currency_.empty()) currency_ = hold.max_amount().currency_code();
      break;
    }
    case PaymentsEvent::kSessionCaptured: {
      const payments::v1::SessionCaptured& captured = event.session_captured();
      RecordedSessionMoney& money = sessions_[captured.session_id()];
      money.captured = true;
      money.amount_minor = captured.amount().amount_minor();
      money.fee_minor = captured.fee_minor();
      money.expert_share_minor = captured.expert_share_minor();
      break;
    }
    case PaymentsEvent::kSessionRefunded:
      sessions_[event.session_refunded().session_id()].refunded = true;
      break;
    default:
      break;
  }
}

void Recording::Finish() {
  // Topics' partitions are read in no fixed order: sort on what the events
  // say, so that every run sees the same order.
  std::stable_sort(pool_inputs_.begin(), pool_inputs_.end(),
                   [](const PoolInput& a, const PoolInput& b) {
                     return std::tie(a.at, a.aggregate_id, a.version, a.kind) <
                            std::tie(b.at, b.aggregate_id, b.version, b.kind);
                   });
  std::stable_sort(requests_.begin(), requests_.end(),
                   [](const RecordedRequest& a, const RecordedRequest& b) {
                     return std::tie(a.asked_at, a.id) < std::tie(b.asked_at, b.id);
                   });
  for (auto& [expert, history] : answers_) {
    std::sort(history.answer_times.begin(), history.answer_times.end());
  }
  request_index_.clear();
  for (size_t i = 0; i < requests_.size(); ++i) request_index_[requests_[i].id] = i;
  for (RecordedBooking& booking : bookings_) {
    auto money = sessions_.find(booking.id);
    if (money != sessions_.end()) booking.category_id = money->second.category_id;
  }
  std::stable_sort(bookings_.begin(), bookings_.end(),
                   [](const RecordedBooking& a, const RecordedBooking& b) {
                     return std::tie(a.start, a.id) < std::tie(b.start, b.id);
                   });
  booking_index_.clear();
  for (size_t i = 0; i < bookings_.size(); ++i) booking_index_[bookings_[i].id] = i;
}

std::vector<std::string> Recording::Experts() const {
  std::set<std::string> experts;
  for (const PoolInput& input : pool_inputs_) {
    if (input.kind != PoolInput::Kind::kPresence) continue;
    const matching::v1::MatchingEvent& event = input.matching;
    if (event.has_expert_went_online()) experts.insert(event.expert_went_online().expert_id());
  }
  for (const auto& [request, offered] : offers_by_request_) {
    experts.insert(offered.begin(), offered.end());
  }
  for (const RecordedBooking& booking : bookings_) experts.insert(booking.expert_id);
  return {experts.begin(), experts.end()};
}

std::optional<absl::Duration> Recording::OfferWindow() const {
  if (offer_lengths_ms_.empty()) return std::nullopt;
  // Offers' lengths are exact; the most common one is the configured window.
  auto most = std::max_element(offer_lengths_ms_.begin(), offer_lengths_ms_.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  return absl::Milliseconds(most->first);
}

}  // namespace helpline::whatif
