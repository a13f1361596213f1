#include "tools/whatif/simulation.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "services/payments/domain/money.h"
#include "services/runtime/core/proto_time.h"
#include "services/sessions/domain/sessions_domain.h"

namespace helpline::whatif {
namespace {

// A model's figure is pulled towards everyone's as if this many
// observations at everyone's rate came first.
constexpr double kPriorWeight = 5;
// Below this many of their own, an expert's (a category's) recorded times
// give way to everyone's.
constexpr size_t kOwnTimesNeeded = 3;
constexpr absl::Duration kAnswerTimeUnrecorded = absl::Seconds(5);
constexpr absl::Duration kCallUnrecorded = absl::Minutes(10);

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A number in [0, 1) that depends only on the seed and the keys: the same
// expert meeting the same request behaves the same under either policy.
double Draw(uint64_t seed, absl::string_view key, absl::string_view what) {
  uint64_t hash = 14695981039346656037ull ^ Mix(seed);
  for (absl::string_view part : {key, absl::string_view("\x1f"), what}) {
    for (unsigned char c : part) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  }
  return static_cast<double>(Mix(hash) >> 11) * 0x1.0p-53;
}

template <class T>
const T& Pick(const std::vector<T>& values, double draw) {
  size_t index = static_cast<size_t>(draw * static_cast<double>(values.size()));
  return values[std::min(index, values.size() - 1)];
}

double Shrunk(double everyone, double hits, double tries) {
  return (kPriorWeight * everyone + hits) / (kPriorWeight + tries);
}

void OverrideMinimumMinutes(google::protobuf::Message& message, int minutes) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  if (auto* price = dynamic_cast<catalog::v1::PriceTerms*>(&message)) {
    if (price->has_per_minute()) price->mutable_per_minute()->set_minimum_minutes(minutes);
    return;
  }
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        OverrideMinimumMinutes(*reflection->MutableRepeatedMessage(&message, field, i), minutes);
      }
    } else {
      OverrideMinimumMinutes(*reflection->MutableMessage(&message, field), minutes);
    }
  }
}

// What the recording says about how people behave, shared by every policy.
struct Behaviour {
  struct Answers {
    double answer_share = 1;  // of offers answered in time
    double accept_share = 1;  // of answers, accepted
    const std::vector<absl::Duration>* times = nullptr;
  };
  double everyone_answers = 1;
  double everyone_accepts = 1;
  std::vector<absl::Duration> everyone_answer_times;
  std::map<std::string, Answers> experts;

  // A recorded call: the time billed, and the time its expert was taken
  // (from the match, or the booking's start, to the session's end).
  struct Call {
    absl::Duration billable;
    absl::Duration occupied;
  };
  std::vector<Call> all_calls;
  int64_t billed_calls = 0;
  std::map<std::string, std::vector<Call>> calls_by_category;
  double everyone_refunds = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> refunds_by_category;  // asked, billed
  std::vector<absl::Duration> refund_delays;

  Behaviour(const Behaviour&) = delete;  // `Answers::times` points into it
  Behaviour& operator=(const Behaviour&) = delete;
  explicit Behaviour(const Recording& recording) {
    int64_t offers = 0, answered = 0, accepted = 0;
    for (const auto& [expert, history] : recording.answers()) {
      offers += history.offers;
      answered += history.accepted + history.declined;
      accepted += history.accepted;
      everyone_answer_times.insert(everyone_answer_times.end(), history.answer_times.begin(),
                                   history.answer_times.end());
    }
    if (offers > 0) everyone_answers = static_cast<double>(answered) / offers;
    if (answered > 0) everyone_accepts = static_cast<double>(accepted) / answered;
    if (everyone_answer_times.empty()) everyone_answer_times.push_back(kAnswerTimeUnrecorded);
    for (const auto& [expert, history] : recording.answers()) {
      Answers& model = experts[expert];
      const double answers = static_cast<double>(history.accepted + history.declined);
      model.answer_share = Shrunk(everyone_answers, answers, static_cast<double>(history.offers));
      model.accept_share =
          Shrunk(everyone_accepts, static_cast<double>(history.accepted), answers);
      model.times = history.answer_times.size() >= kOwnTimesNeeded ? &history.answer_times
                                                                   : &everyone_answer_times;
    }

    int64_t billed = 0, asked = 0;
    for (const auto& [session, money] : recording.sessions()) {
      // Calls that billed nothing (nobody connected long enough) count too.
      if (!money.ended_at) continue;
      const Call call{money.billable,
                      std::max(money.billable, money.started_at ? *money.ended_at - *money.started_at
                                                                : money.billable)};
      all_calls.push_back(call);
      calls_by_category[money.category_id].push_back(call);
      if (money.billable <= absl::ZeroDuration()) continue;
      ++billed;
      ++refunds_by_category[money.category_id].second;
      if (money.refund_asked_at) {
        ++asked;
        ++refunds_by_category[money.category_id].first;
        refund_delays.push_back(*money.refund_asked_at - *money.ended_at);
      }
    }
    if (all_calls.empty()) all_calls.push_back({kCallUnrecorded, kCallUnrecorded});
    billed_calls = billed;
    if (billed > 0) everyone_refunds = static_cast<double>(asked) / billed;
    std::sort(refund_delays.begin(), refund_delays.end());
  }

  Answers For(const std::string& expert) const {
    auto found = experts.find(expert);
    if (found != experts.end()) return found->second;
    return {everyone_answers, everyone_accepts, &everyone_answer_times};
  }
  const std::vector<Call>& Calls(const std::string& category) const {
    auto found = calls_by_category.find(category);
    return found != calls_by_category.end() && found->second.size() >= kOwnTimesNeeded
               ? found->second
               : all_calls;
  }
  double RefundShare(const std::string& category) const {
    auto found = refunds_by_category.find(category);
    if (found == refunds_by_category.end()) return everyone_refunds;
    return Shrunk(everyone_refunds, static_cast<double>(found->second.first),
                  static_cast<double>(found->second.second));
  }
};

class Simulation {
 public:
  Simulation(const Recording& recording, const Policy& policy, const Window& window,
             uint64_t seed)
      : recording_(recording),
        behaviour_(recording),
        policy_(policy),
        window_(window),
        seed_(seed),
        pool_(policy.ranking) {}

  Outcome Run() {
    const std::vector<PoolInput>& inputs = recording_.pool_inputs();
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].kind == PoolInput::Kind::kOfferOutcome && inputs[i].at >= window_.since) {
        continue;
      }
      Schedule(inputs[i].at, kPoolInput, i);
    }
    const std::vector<RecordedRequest>& requests = recording_.requests();
    requests_.resize(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      const RecordedRequest& request = requests[i];
      if (!window_.Contains(request.asked_at)) continue;
      ++outcome_.requests;
      Schedule(request.asked_at, kAsk, i);
      Schedule(request.expires_at, kRequestExpires, i);
      if (request.cancelled_at) Schedule(*request.cancelled_at, kPersonCancels, i);
    }
    const std::vector<RecordedBooking>& bookings = recording_.bookings();
    for (size_t i = 0; i < bookings.size(); ++i) {
      const RecordedBooking& booking = bookings[i];
      if (!window_.Contains(booking.start)) continue;
      if (!booking.cancelled) {
        Schedule(booking.start, kBookingStarts, i);
      } else if (booking.late_cancellation_by_person) {
        Schedule(booking.cancelled_at, kBookingCancelledLate, i);
      }
    }
    for (const std::string& expert : recording_.Experts()) outcome_.experts[expert];

    // Nothing is known past the recording's end: a request open then is
    // still waiting, as in the recorded column.
    while (!queue_.empty() && queue_.top().at <= recording_.latest()) {
      Happening next = queue_.top();
      queue_.pop();
      now_ = next.at;
      Handle(next);
      if (dirty_ && (queue_.empty() || queue_.top().at > now_)) Dispatch();
    }
    for (const RequestState& request : requests_) {
      if (request.status == Status::kWaiting || request.status == Status::kOffered) {
        ++outcome_.unresolved;
      }
    }
    return std::move(outcome_);
  }

 private:
  // Ties at one instant: the pool first (presence, catalog), then what ends
  // requests and offers, then new requests.
  enum Kind {
    kPoolInput = 0,
    kPersonCancels = 1,
    kRequestExpires = 2,
    kOfferAnswered = 3,
    kOfferRunsOut = 4,
    kCallEnds = 5,
    kBookingStarts = 6,
    kBookingCancelledLate = 7,
    kAsk = 8,
  };
  struct Happening {
    absl::Time at;
    Kind kind;
    int64_t sequence;
    size_t index;       // into the recording's inputs, requests or bookings
    int64_t offer = 0;  // kOfferAnswered / kOfferRunsOut: which offer
    bool accepted = false;
    std::string expert_id;  // kCallEnds
    bool operator>(const Happening& other) const {
      if (at != other.at) return at > other.at;
      if (kind != other.kind) return kind > other.kind;
      return sequence > other.sequence;
    }
  };
  enum class Status { kNotAsked, kWaiting, kOffered, kDone };
  struct RequestState {
    Status status = Status::kNotAsked;
    int64_t offers = 0;  // also the current offer's number
    std::string offered_to;
    matching::Candidate candidate;
    std::vector<std::string> tried;
  };
  struct ExpertState {
    bool has_offer = false;
    int calls = 0;
  };

  void Schedule(absl::Time at, Kind kind, size_t index, int64_t offer = 0, bool accepted = false,
                std::string expert_id = {}) {
    // Never into the past, whatever the recorded clocks said.
    queue_.push({std::max(at, now_), kind, sequence_++, index, offer, accepted,
                 std::move(expert_id)});
  }

  void Handle(const Happening& happening) {
    const size_t i = happening.index;
    switch (happening.kind) {
      case kPoolInput:
        ApplyToPool(recording_.pool_inputs()[i]);
        dirty_ = true;
        return;
      case kAsk:
        requests_[i].status = Status::kWaiting;
        waiting_.insert(i);
        dirty_ = true;
        return;
      case kPersonCancels:
      case kRequestExpires: {
        RequestState& request = requests_[i];
        if (request.status != Status::kWaiting && request.status != Status::kOffered) return;
        if (request.status == Status::kOffered) Free(request.offered_to);
        request.status = Status::kDone;
        waiting_.erase(i);
        ++(happening.kind == kPersonCancels ? outcome_.cancelled : outcome_.expired);
        return;
      }
      case kOfferAnswered:
      case kOfferRunsOut: {
        RequestState& request = requests_[i];
        if (request.status != Status::kOffered || request.offers != happening.offer) return;
        const std::string expert = request.offered_to;
        Free(expert);
        matching::v1::MatchingEvent event;
        if (happening.kind == kOfferAnswered && happening.accepted) {
          event.mutable_match_made()->mutable_match()->set_expert_id(expert);
          pool_.ApplyMatching(event);
          request.status = Status::kDone;
          ++outcome_.matched;
          outcome_.waits.push_back(now_ - recording_.requests()[i].asked_at);
          const RecordedRequest& recorded = recording_.requests()[i];
          StartCall(recorded.id, expert, recorded.query.category_id, /*booked=*/false,
                    recorded.query.sponsor_program_id, request.candidate.price,
                    request.candidate.terms.max_minutes);
          return;
        }
        if (happening.kind == kOfferAnswered) {
          event.mutable_offer_declined()->set_expert_id(expert);
        } else {
          event.mutable_offer_expired()->set_expert_id(expert);
        }
        pool_.ApplyMatching(event);
        request.status = Status::kWaiting;
        waiting_.insert(i);
        dirty_ = true;
        return;
      }
      case kCallEnds:
        --experts_[happening.expert_id].calls;
        dirty_ = true;
        return;
      case kBookingStarts: {
        const RecordedBooking& booking = recording_.bookings()[i];
        StartCall(booking.id, booking.expert_id, booking.category_id, /*booked=*/true,
                  booking.sponsor_program_id, booking.price, booking.max_minutes);
        return;
      }
      case kBookingCancelledLate: {
        // The minimum charge: the least a billed session costs.
        const RecordedBooking& booking = recording_.bookings()[i];
        Bill(booking.id, booking.expert_id, booking.category_id, /*booked=*/true,
             booking.sponsor_program_id,
             sessions::BillFor(Priced(booking.price), absl::Nanoseconds(1), booking.max_minutes)
                 .amount()
                 .amount_minor(),
             /*may_refund=*/false);
        return;
      }
    }
  }

  void ApplyToPool(const PoolInput& input) {
    switch (input.kind) {
      case PoolInput::Kind::kCatalog:
        if (policy_.minimum_minutes > 0) {
          catalog::v1::CatalogEvent event = input.catalog;
          OverrideMinimumMinutes(event, policy_.minimum_minutes);
          pool_.ApplyCatalog(event);
        } else {
          pool_.ApplyCatalog(input.catalog);
        }
        return;
      case PoolInput::Kind::kPresence: {
        // Busy is the recorded calls' doing; the simulation has its own.
        matching::v1::MatchingEvent event = input.matching;
        if (event.has_expert_status_changed() &&
            event.expert_status_changed().status() == matching::v1::PRESENCE_STATUS_BUSY) {
          event.mutable_expert_status_changed()->set_status(
              matching::v1::PRESENCE_STATUS_AVAILABLE);
        }
        if (event.has_expert_went_online() &&
            event.expert_went_online().status() == matching::v1::PRESENCE_STATUS_BUSY) {
          event.mutable_expert_went_online()->set_status(matching::v1::PRESENCE_STATUS_AVAILABLE);
        }
        pool_.ApplyMatching(event);
        return;
      }
      case PoolInput::Kind::kReview:
        pool_.RecordReview(input.expert_id, input.stars);
        return;
      case PoolInput::Kind::kOfferOutcome:
        // Before the window: the acceptance history the ranking starts from.
        pool_.ApplyMatching(input.matching);
        return;
    }
  }

  void Free(const std::string& expert) {
    experts_[expert].has_offer = false;
    dirty_ = true;
  }

  // Oldest request first, each to the best ranked expert free for it, as
  // matching's dispatcher does.
  void Dispatch() {
    dirty_ = false;
    std::vector<size_t> waiting(waiting_.begin(), waiting_.end());
    for (size_t i : waiting) {
      RequestState& request = requests_[i];
      matching::CandidateQuery query = recording_.requests()[i].query;
      query.excluded = [&](const std::string& expert_id) {
        auto found = experts_.find(expert_id);
        if (found != experts_.end() && (found->second.has_offer || found->second.calls > 0)) {
          return true;
        }
        return std::find(request.tried.begin(), request.tried.end(), expert_id) !=
               request.tried.end();
      };
      std::vector<matching::Candidate> best = pool_.Rank(query, now_, 1);
      if (best.empty()) continue;
      Offer(i, best.front());
    }
  }

  void Offer(size_t i, const matching::Candidate& candidate) {
    RequestState& request = requests_[i];
    const std::string& expert = candidate.expert_id;
    waiting_.erase(i);
    request.status = Status::kOffered;
    ++request.offers;
    request.offered_to = expert;
    request.candidate = candidate;
    request.tried.push_back(expert);
    experts_[expert].has_offer = true;
    ++outcome_.offers;
    ++outcome_.experts[expert].offers;
    matching::v1::MatchingEvent offered;
    offered.mutable_expert_offered()->set_expert_id(expert);
    *offered.mutable_meta()->mutable_occurred_at() = ToProtoTime(now_);
    pool_.ApplyMatching(offered);

    const std::string key = absl::StrCat(recording_.requests()[i].id, "/", expert);
    const Behaviour::Answers answers = behaviour_.For(expert);
    if (Draw(seed_, key, "answers") >= answers.answer_share) {
      Schedule(now_ + policy_.offer_window, kOfferRunsOut, i, request.offers);
      return;
    }
    const absl::Duration answer_time = Pick(*answers.times, Draw(seed_, key, "answer time"));
    if (answer_time >= policy_.offer_window) {
      Schedule(now_ + policy_.offer_window, kOfferRunsOut, i, request.offers);
      return;
    }
    Schedule(now_ + answer_time, kOfferAnswered, i, request.offers,
             Draw(seed_, key, "accepts") < answers.accept_share);
  }

  catalog::v1::PriceTerms Priced(const catalog::v1::PriceTerms& price) const {
    catalog::v1::PriceTerms priced = price;
    if (policy_.minimum_minutes > 0 && priced.has_per_minute()) {
      priced.mutable_per_minute()->set_minimum_minutes(policy_.minimum_minutes);
    }
    return priced;
  }

  void StartCall(const std::string& session, const std::string& expert,
                 const std::string& category, bool booked, const std::string& program,
                 const catalog::v1::PriceTerms& price, int max_minutes) {
    const Behaviour::Call& call = Pick(behaviour_.Calls(category), Draw(seed_, session, "call"));
    // A longer recorded call is cut at this session's length, as its timer
    // would; the time around it (joining, leaving) stays.
    const absl::Duration billable =
        std::min(call.billable, absl::Minutes(std::max(max_minutes, 1)));
    ++experts_[expert].calls;
    Schedule(now_ + call.occupied - (call.billable - billable), kCallEnds, 0, 0, false, expert);
    Bill(session, expert, category, booked, program,
         sessions::BillFor(Priced(price), billable, max_minutes).amount().amount_minor(),
         /*may_refund=*/true);
  }

  void Bill(const std::string& session, const std::string& expert, const std::string& category,
            bool booked, const std::string& program, int64_t amount, bool may_refund) {
    if (amount <= 0) return;
    // Payments charges a booking the rate of no category (reactions.cc).
    const payments::Split split = payments::SplitAmount(
        amount, policy_.commission.For(booked ? "" : category, program));
    ExpertOutcome& earner = outcome_.experts[expert];
    ++outcome_.sessions;
    ++earner.sessions;
    outcome_.revenue_minor += amount;
    bool refunded = false;
    if (may_refund && !behaviour_.refund_delays.empty() &&
        Draw(seed_, session, "asks a refund") < behaviour_.RefundShare(category)) {
      refunded = Pick(behaviour_.refund_delays, Draw(seed_, session, "refund delay")) <=
                 policy_.refund_window;
    }
    if (refunded) {
      ++outcome_.refunds;
      outcome_.refunded_minor += amount;
      return;
    }
    outcome_.commission_minor += split.fee;
    outcome_.expert_earnings_minor += split.expert_share;
    earner.earnings_minor += split.expert_share;
  }

  const Recording& recording_;
  const Behaviour behaviour_;
  const Policy policy_;
  const Window window_;
  const uint64_t seed_;
  matching::CandidatePool pool_;
  std::priority_queue<Happening, std::vector<Happening>, std::greater<Happening>> queue_;
  int64_t sequence_ = 0;
  absl::Time now_ = absl::InfinitePast();
  bool dirty_ = false;
  std::vector<RequestState> requests_;
  std::set<size_t> waiting_;  // oldest first
  std::map<std::string, ExpertState> experts_;
  Outcome outcome_;
};

template <class Key>
Key MostCommon(const std::map<Key, int64_t>& counts) {
  return std::max_element(counts.begin(), counts.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

}  // namespace

Policy RecordedPolicy(const Recording& recording, Policy defaults) {
  Policy policy = std::move(defaults);
  if (std::optional<absl::Duration> window = recording.OfferWindow()) policy.offer_window = *window;
  // The rates the holds carried: by category where no program paid (the
  // most common overall is the default), then a program's own rate where
  // its sessions carried another than their category's.
  std::map<int32_t, int64_t> overall;
  std::map<std::string, std::map<int32_t, int64_t>> by_category;
  for (const auto& [session, money] : recording.sessions()) {
    if (money.commission_bps < 0 || !money.sponsor_program_id.empty()) continue;
    ++overall[money.commission_bps];
    ++by_category[money.booked ? "" : money.category_id][money.commission_bps];
  }
  payments::CommissionOptions& commission = policy.commission;
  if (!overall.empty()) {
    commission.category_bps.clear();
    commission.default_bps = MostCommon(overall);
    for (const auto& [category, counts] : by_category) {
      if (int32_t bps = MostCommon(counts); bps != commission.default_bps) {
        commission.category_bps[category] = bps;
      }
    }
  }
  std::map<std::string, std::map<int32_t, int64_t>> by_program;
  for (const auto& [session, money] : recording.sessions()) {
    if (money.commission_bps < 0 || money.sponsor_program_id.empty()) continue;
    if (money.commission_bps != commission.For(money.booked ? "" : money.category_id, "")) {
      ++by_program[money.sponsor_program_id][money.commission_bps];
    }
  }
  commission.program_bps.clear();
  for (const auto& [program, counts] : by_program) {
    commission.program_bps[program] = MostCommon(counts);
  }
  return policy;
}

absl::Status ParseRankingWeights(absl::string_view text, matching::RankingOptions& ranking) {
  const std::map<std::string, double*> weights = {
      {"rating", &ranking.rating_weight},
      {"acceptance", &ranking.acceptance_weight},
      {"price", &ranking.price_weight},
      {"fairness", &ranking.fairness_weight},
  };
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> name_and_value =
        absl::StrSplit(absl::StripAsciiWhitespace(entry), absl::MaxSplits('=', 1));
    auto weight = weights.find(name_and_value.first);
    double value = 0;
    if (weight == weights.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", entry, "\": the weights are rating, acceptance, price and fairness"));
    }
    if (!absl::SimpleAtod(name_and_value.second, &value) || !(value >= 0 && value <= 10)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\": a weight is a number from 0 to 10"));
    }
    *weight->second = value;
  }
  return absl::OkStatus();
}

Outcome RecordedOutcome(const Recording& recording, const Window& window) {
  Outcome outcome;
  for (const std::string& expert : recording.Experts()) outcome.experts[expert];
  absl::flat_hash_set<std::string> sessions;
  for (const RecordedRequest& request : recording.requests()) {
    if (!window.Contains(request.asked_at)) continue;
    ++outcome.requests;
    outcome.offers += request.offers;
    auto offered = recording.offers_by_request().find(request.id);
    if (offered != recording.offers_by_request().end()) {
      for (const std::string& expert : offered->second) ++outcome.experts[expert].offers;
    }
    switch (request.ending) {
      case RecordedRequest::Ending::kMatched:
        ++outcome.matched;
        outcome.waits.push_back(request.waited);
        sessions.insert(request.session_id);
        break;
      case RecordedRequest::Ending::kExpired:
        ++outcome.expired;
        break;
      case RecordedRequest::Ending::kCancelled:
        ++outcome.cancelled;
        break;
      case RecordedRequest::Ending::kWaiting:
        ++outcome.unresolved;
        break;
    }
  }
  for (const RecordedBooking& booking : recording.bookings()) {
    if (window.Contains(booking.start)) sessions.insert(booking.id);
  }
  for (const auto& [session, money] : recording.sessions()) {
    if (!sessions.contains(session) || !money.captured || money.amount_minor <= 0) continue;
    ExpertOutcome& earner = outcome.experts[money.expert_id];
    ++outcome.sessions;
    ++earner.sessions;
    outcome.revenue_minor += money.amount_minor;
    if (money.refunded) {
      ++outcome.refunds;
      outcome.refunded_minor += money.amount_minor;
      continue;
    }
    outcome.commission_minor += money.fee_minor;
    outcome.expert_earnings_minor += money.expert_share_minor;
    earner.earnings_minor += money.expert_share_minor;
  }
  return outcome;
}

Outcome Simulate(const Recording& recording, const Policy& policy, const Window& window,
                 uint64_t seed) {
  return Simulation(recording, policy, window, seed).Run();
}

std::vector<std::string> Assumptions(const Recording& recording) {
  const Behaviour behaviour(recording);
  int64_t experts_with_times = 0;
  for (const auto& [expert, history] : recording.answers()) {
    if (history.answer_times.size() >= kOwnTimesNeeded) ++experts_with_times;
  }
  return {
      "Help requests and bookings arrive as recorded, each request with its recorded expiry; a "
      "person who cancelled cancels after the same wait if still unmatched.",
      "Experts are online, available and away as recorded (a recorded 'busy' counts as "
      "available: the simulation knows who is in its own calls); catalog changes and reviews "
      "take effect at their recorded times.",
      absl::StrFormat(
          "An expert answers an offer in time with their recorded share (everyone's: %.0f%%) and "
          "accepts with their recorded share of answers (everyone's: %.0f%%), each pulled towards "
          "everyone's as if %.0f offers at everyone's rates came first.",
          100 * behaviour.everyone_answers, 100 * behaviour.everyone_accepts, kPriorWeight),
      absl::StrFormat(
          "Answer times are drawn from the expert's own recorded ones (%d experts have %d or "
          "more), else from everyone's (%d recorded); an answer slower than the offer window is "
          "lost and the offer runs out. An offer that ran out unanswered under the recorded window "
          "stays unanswered under a longer one.",
          experts_with_times, kOwnTimesNeeded, recording.answers().empty()
                                                   ? 0
                                                   : behaviour.everyone_answer_times.size()),
      absl::StrFormat(
          "A call is drawn from the recorded sessions that ended in its category (everyone's when "
          "the category has fewer than %d; %d recorded in all, of which %d billed something): its "
          "billable time, at most the session's length, and the time its expert was taken, from "
          "the match to the session's end, during which they get no offer. No-shows (sessions that "
          "never started) are not simulated: every match is a call.",
          kOwnTimesNeeded, behaviour.all_calls.size(), behaviour.billed_calls),
      absl::StrFormat(
          "A refund is asked for with the category's recorded share of billed sessions (everyone's: "
          "%.1f%%), after a delay drawn from the %d recorded ones, and granted inside the refund "
          "window. Refunds a shorter recorded window refused were never asked, so a longer window "
          "adds none.",
          100 * behaviour.everyone_refunds, behaviour.refund_delays.size()),
      "Demand does not react to the policy: the same people ask at the same times, and a person "
      "the recording matched waits, if need be, until the request's recorded expiry.",
      "Sponsor programs' limits (free sessions per person, the sponsor's budget) are not "
      "applied again: a sponsored session is billed to its program as recorded.",
      "Random draws are keyed by the request, the expert and the seed: where both policies make "
      "the same offer, the expert answers it the same way.",
  };
}

double Gini(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  double total = 0, weighted = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    total += values[i];
    weighted += static_cast<double>(i + 1) * values[i];
  }
  if (total <= 0) return 0;
  const double n = static_cast<double>(values.size());
  return 2 * weighted / (n * total) - (n + 1) / n;
}

absl::Duration Percentile(std::vector<absl::Duration> values, double p) {
  if (values.empty()) return absl::ZeroDuration();
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

}  // namespace helpline::whatif
