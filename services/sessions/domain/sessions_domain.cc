#include "services/sessions/domain/sessions_domain.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::sessions {
namespace {

using v1::SessionsCommand;
using v1::SessionsEvent;
using v1::SessionStatus;
using Events = std::vector<SessionsEvent>;

bool Active(SessionStatus status) {
  return status == v1::SESSION_STATUS_CREATED || status == v1::SESSION_STATUS_WAITING ||
         status == v1::SESSION_STATUS_LIVE || status == v1::SESSION_STATUS_RECONNECTING;
}

std::string Actor(const es::DecideContext& context) {
  return context.meta == nullptr ? "" : context.meta->actor().user_id();
}

// "person", "expert" or "" for `user_id` in this session.
std::string RoleOf(const v1::Session& session, const std::string& user_id) {
  if (user_id.empty()) return "";
  if (user_id == session.person_id()) return "person";
  if (user_id == session.expert_id()) return "expert";
  return "";
}

bool Connected(const v1::SessionState& state, const std::string& role) {
  return role == "person" ? state.session().person_connected() : state.session().expert_connected();
}

absl::Time LastAt(const v1::SessionState& state) { return FromProtoTime(state.last_at()); }

bool FromMediaServer(const v1::Session& session) {
  return session.connection_source() == v1::CONNECTION_SOURCE_MEDIA_SERVER;
}

// A media connection's last span (a listing may have closed and reopened
// it), or null.
const v1::ConnectionSpan* SpanOf(const v1::SessionState& state, const std::string& sid) {
  const v1::ConnectionSpan* last = nullptr;
  for (const v1::ConnectionSpan& span : state.connections()) {
    if (span.participant_sid() == sid) last = &span;
  }
  return last;
}

bool IsOpen(const v1::ConnectionSpan& span) { return !span.has_closed_at(); }

int OpenSpansOf(const v1::SessionState& state, const std::string& user_id) {
  return static_cast<int>(std::count_if(
      state.connections().begin(), state.connections().end(),
      [&](const v1::ConnectionSpan& span) { return span.user_id() == user_id && IsOpen(span); }));
}

// How long the person and the expert were both connected by `end`, on the
// media server's own times: the overlap of the unions of their spans.
absl::Duration MediaOverlap(const v1::SessionState& state, absl::Time end) {
  const v1::Session& session = state.session();
  std::vector<std::pair<absl::Time, int>> changes;  // +1/-1 per person (1) or expert (2)
  for (const v1::ConnectionSpan& span : state.connections()) {
    int who = span.user_id() == session.person_id() ? 1 : 2;
    absl::Time from = FromProtoTime(span.opened_at());
    absl::Time to = IsOpen(span) ? end : std::min(FromProtoTime(span.closed_at()), end);
    if (to <= from) continue;
    changes.push_back({from, who});
    changes.push_back({to, -who});
  }
  std::sort(changes.begin(), changes.end());
  int open[3] = {0, 0, 0};
  absl::Duration both;
  absl::Time since;
  for (const auto& [at, change] : changes) {
    bool before = open[1] > 0 && open[2] > 0;
    open[std::abs(change)] += change > 0 ? 1 : -1;
    bool after = open[1] > 0 && open[2] > 0;
    if (!before && after) since = at;
    if (before && !after) both += at - since;
  }
  return both;
}

// The command's time, never before what was recorded already.
absl::Time Ordered(const v1::SessionState& state, const google::protobuf::Timestamp& at,
                   absl::Time now) {
  absl::Time time = at.seconds() == 0 && at.nanos() == 0 ? now : FromProtoTime(at);
  return std::max(time, LastAt(state));
}

absl::Duration BillableAt(const v1::SessionState& state, absl::Time at) {
  absl::Duration billable = FromProtoDuration(state.session().billable());
  if (state.has_both_since()) billable += at - FromProtoTime(state.both_since());
  return billable;
}

bool EverLive(const v1::SessionState& state) { return state.session().has_started_at(); }

// When the billable time reaches the cap, while both are connected.
std::optional<absl::Time> CapAt(const v1::SessionState& state) {
  if (!state.has_both_since()) return std::nullopt;
  absl::Duration left = absl::Minutes(state.session().max_minutes()) -
                        FromProtoDuration(state.session().billable());
  return FromProtoTime(state.both_since()) + std::max(left, absl::ZeroDuration());
}

SessionsEvent Ended(const v1::SessionState& state, v1::EndReason reason,
                    const std::string& ended_by, absl::Time at) {
  const v1::Session& session = state.session();
  SessionsEvent event;
  v1::SessionEnded& ended = *event.mutable_session_ended();
  ended.set_reason(reason);
  ended.set_ended_by(ended_by);
  *ended.mutable_at() = ToProtoTime(at);
  // From the media server: the overlap on its own times, whatever order its
  // reports arrived in.
  absl::Duration billable =
      FromMediaServer(session) ? MediaOverlap(state, at) : BillableAt(state, at);
  *ended.mutable_billing() = BillFor(session.price(), billable, session.max_minutes());
  ended.set_person_id(session.person_id());
  ended.set_expert_id(session.expert_id());
  ended.set_sponsor_program_id(session.sponsor_program_id());
  ended.set_category_id(session.category_id());
  return event;
}

absl::StatusOr<Events> Create(const v1::SessionState& state, const v1::CreateSession& create,
                              const es::DecideContext& context) {
  // A second MatchMade or BookingConfirmed for the same id changes nothing.
  if (state.session().status() != v1::SESSION_STATUS_UNSPECIFIED) return Events{};
  if (create.person_id().empty() || create.expert_id().empty() ||
      create.person_id() == create.expert_id()) {
    return errors::InvalidField("create_session", "a person and another expert are required");
  }
  if (create.kind() == v1::SESSION_KIND_BOOKED && !create.has_scheduled_start()) {
    return errors::InvalidField("create_session.scheduled_start", "is required for a booking");
  }
  SessionsEvent event;
  v1::SessionCreated& created = *event.mutable_session_created();
  created.set_kind(create.kind());
  created.set_person_id(create.person_id());
  created.set_expert_id(create.expert_id());
  *created.mutable_price() = create.price();
  created.set_max_minutes(create.max_minutes());
  *created.mutable_max_amount() = create.max_amount();
  created.set_sponsor_program_id(create.sponsor_program_id());
  created.set_category_id(create.category_id());
  created.set_connection_source(create.connection_source());
  absl::Time from = context.now;
  if (create.kind() == v1::SESSION_KIND_BOOKED) {
    *created.mutable_scheduled_start() = create.scheduled_start();
    from = FromProtoTime(create.scheduled_start());
  }
  *created.mutable_join_deadline() = ToProtoTime(from + FromProtoDuration(create.join_window()));
  *created.mutable_grace_period() = create.grace_period();
  return Events{event};
}

absl::StatusOr<Events> Join(const v1::SessionState& state, const std::string& role,
                            const std::string& user_id, absl::Time at) {
  const v1::Session& session = state.session();
  if (!Active(session.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the session is ", v1::SessionStatus_Name(session.status())));
  }
  if (!EverLive(state) && at > FromProtoTime(session.join_deadline())) {
    return absl::FailedPreconditionError("the join window has closed");
  }
  if (Connected(state, role)) return Events{};  // a second join (a new token) changes nothing
  bool other_connected = Connected(state, role == "person" ? "expert" : "person");
  SessionsEvent event;
  v1::ParticipantJoined& joined = *event.mutable_participant_joined();
  joined.set_user_id(user_id);
  *joined.mutable_at() = ToProtoTime(at);
  if (other_connected) {
    joined.set_status(v1::SESSION_STATUS_LIVE);
  } else if (session.status() == v1::SESSION_STATUS_RECONNECTING) {
    joined.set_status(v1::SESSION_STATUS_RECONNECTING);
  } else {
    joined.set_status(v1::SESSION_STATUS_WAITING);
  }
  return Events{event};
}

absl::StatusOr<Events> Leave(const v1::SessionState& state, const std::string& role,
                             const std::string& user_id, absl::Time at) {
  const v1::Session& session = state.session();
  if (!Active(session.status()) || !Connected(state, role)) return Events{};
  SessionsEvent event;
  v1::ParticipantLeft& left = *event.mutable_participant_left();
  left.set_user_id(user_id);
  *left.mutable_at() = ToProtoTime(at);
  if (session.status() == v1::SESSION_STATUS_LIVE) {
    left.set_status(v1::SESSION_STATUS_RECONNECTING);
    *left.mutable_reconnect_deadline() = ToProtoTime(at + FromProtoDuration(state.grace_period()));
  } else if (session.status() == v1::SESSION_STATUS_RECONNECTING) {
    left.set_status(v1::SESSION_STATUS_RECONNECTING);
    *left.mutable_reconnect_deadline() = session.reconnect_deadline();
  } else {
    left.set_status(v1::SESSION_STATUS_CREATED);
  }
  return Events{event};
}

enum class Reporter { kWebhook, kListing };

// How far the media server's clock may run ahead of the services'.
constexpr absl::Duration kListingClockAllowance = absl::Seconds(5);

// One media connection of `identity` opening or closing at `at` (the media
// server's time; the session's status follows in the order reports arrive,
// the bill from the spans' own times): the first of a participant's
// connections to open joins them, the last to close leaves. A connection a
// webhook closed never opens again; one a listing closed opens again only
// by a listing. Anything about a session that is over, or someone who is
// neither participant (an admin watching), changes nothing.
Events DecideConnection(const v1::SessionState& state, const std::string& participant_sid,
                        const std::string& identity, bool connected, absl::Time at,
                        Reporter reporter) {
  const v1::Session& session = state.session();
  const std::string role = RoleOf(session, identity);
  if (role.empty() || participant_sid.empty() || !Active(session.status())) return Events{};
  const v1::ConnectionSpan* span = SpanOf(state, participant_sid);
  const bool open = span != nullptr && IsOpen(*span);
  const bool closed_by_webhook = span != nullptr && !open && !span->closed_by_listing();
  const absl::Time ordered = std::max(at, LastAt(state));
  Events events;
  if (connected) {
    if (open) return Events{};
    if (closed_by_webhook) {
      // A join that arrives after its leave: the span starts when it says.
      if (reporter != Reporter::kWebhook ||
          FromProtoTime(span->opened_at()) != FromProtoTime(span->closed_at()) ||
          at >= FromProtoTime(span->closed_at())) {
        return Events{};
      }
      SessionsEvent event;
      v1::ConnectionOpened& opened = *event.mutable_connection_opened();
      opened.set_user_id(identity);
      opened.set_participant_sid(participant_sid);
      *opened.mutable_at() = ToProtoTime(at);
      return Events{event};
    }
    if (span != nullptr && reporter == Reporter::kWebhook) return Events{};  // a late copy
    // Too late to begin: the join window's timer decides the no-show.
    if (!EverLive(state) && ordered > FromProtoTime(session.join_deadline())) return Events{};
    SessionsEvent event;
    v1::ConnectionOpened& opened = *event.mutable_connection_opened();
    opened.set_user_id(identity);
    opened.set_participant_sid(participant_sid);
    *opened.mutable_at() = ToProtoTime(at);
    events.push_back(std::move(event));
    if (OpenSpansOf(state, identity) == 0) {
      absl::StatusOr<Events> joined = Join(state, role, identity, ordered);
      if (joined.ok()) events.insert(events.end(), joined->begin(), joined->end());
    }
    return events;
  }
  if (closed_by_webhook) return Events{};
  if (span != nullptr && !open && reporter == Reporter::kListing) return Events{};
  SessionsEvent event;
  v1::ConnectionClosed& closed = *event.mutable_connection_closed();
  closed.set_user_id(identity);
  closed.set_participant_sid(participant_sid);
  *closed.mutable_at() = ToProtoTime(at);
  closed.set_was_open(span != nullptr);
  closed.set_by_listing(reporter == Reporter::kListing);
  events.push_back(std::move(event));
  if (open && OpenSpansOf(state, identity) == 1) {
    absl::StatusOr<Events> left = Leave(state, role, identity, ordered);
    if (left.ok()) events.insert(events.end(), left->begin(), left->end());
  }
  return events;
}

// The media server's list of who is in the room at `listed.at()`: unknown
// media-connected connections open at their join time (in that order),
// then open ones not listed close at `at` - unless they opened after it, or
// within the clocks' allowance before (a report that overtook the listing:
// it could not show them). The room finishing closes everyone, for good.
Events DecideParticipants(const v1::SessionState& state, const v1::MediaParticipants& listed) {
  v1::SessionState after = state;
  Events events;
  const Reporter reporter = listed.room_finished() ? Reporter::kWebhook : Reporter::kListing;
  auto decide = [&](const std::string& sid, const std::string& identity, bool connected,
                    absl::Time at) {
    for (SessionsEvent& event : DecideConnection(after, sid, identity, connected, at, reporter)) {
      SessionsDomain::Apply(after, event);
      events.push_back(std::move(event));
    }
  };
  const absl::Time at = FromProtoTime(listed.at());
  std::vector<const v1::MediaParticipant*> present;
  for (const v1::MediaParticipant& participant : listed.participants()) {
    present.push_back(&participant);
  }
  std::sort(present.begin(), present.end(), [](const auto* a, const auto* b) {
    return FromProtoTime(a->joined_at()) < FromProtoTime(b->joined_at());
  });
  const absl::Time created = FromProtoTime(state.session().created_at());
  for (const v1::MediaParticipant* participant : present) {
    if (!participant->media_connected()) continue;
    // A listing older than the listing's close it would undo.
    const v1::ConnectionSpan* span = SpanOf(after, participant->participant_sid());
    if (span != nullptr && !IsOpen(*span) && at <= FromProtoTime(span->closed_at())) continue;
    absl::Time joined =
        participant->has_joined_at() ? FromProtoTime(participant->joined_at()) : at;
    decide(participant->participant_sid(), participant->identity(), true,
           std::max(joined, created));
  }
  // A connection LiveKit stamped as opened shortly before the listing (its
  // clock may run ahead of ours) or after it may not be in it yet.
  std::vector<v1::ConnectionSpan> open;
  for (const v1::ConnectionSpan& span : after.connections()) {
    if (IsOpen(span) && (listed.room_finished() ||
                         FromProtoTime(span.opened_at()) <= at - kListingClockAllowance)) {
      open.push_back(span);
    }
  }
  for (const v1::ConnectionSpan& span : open) {
    bool still_there = std::any_of(present.begin(), present.end(), [&](const auto* participant) {
      return participant->participant_sid() == span.participant_sid();
    });
    if (!still_there) decide(span.participant_sid(), span.user_id(), false, at);
  }
  return events;
}

absl::StatusOr<Events> Fire(const v1::SessionState& state, absl::Time due) {
  const v1::Session& session = state.session();
  if (!Active(session.status())) return Events{};
  SessionsEvent event;
  if (!EverLive(state) && session.status() != v1::SESSION_STATUS_LIVE &&
      due >= FromProtoTime(session.join_deadline())) {
    v1::SessionNoShow& no_show = *event.mutable_session_no_show();
    no_show.set_person_id(session.person_id());
    no_show.set_expert_id(session.expert_id());
    bool person_absent = !state.person_joined();
    bool expert_absent = !state.expert_joined();
    if (!person_absent && !expert_absent) {  // both came, never together
      person_absent = !session.person_connected();
      expert_absent = !session.expert_connected();
    }
    if (person_absent) no_show.add_absent(session.person_id());
    if (expert_absent) no_show.add_absent(session.expert_id());
    return Events{event};
  }
  if (session.status() == v1::SESSION_STATUS_RECONNECTING &&
      due >= FromProtoTime(session.reconnect_deadline())) {
    return Events{Ended(state, v1::END_REASON_NOT_BACK, "",
                        FromProtoTime(session.reconnect_deadline()))};
  }
  if (std::optional<absl::Time> cap = CapAt(state); cap && due >= *cap) {
    return Events{Ended(state, v1::END_REASON_TIME_CAP, "", *cap)};
  }
  return Events{};
}

// The person's, on an ENDED session, within `window` of the end, once.
absl::Status CheckAfterEnd(const v1::SessionState& state, const std::string& role,
                           absl::Duration window, absl::Time now, const char* what) {
  const v1::Session& session = state.session();
  if (role != "person") {
    return absl::PermissionDeniedError(absl::StrCat("only the person can ", what));
  }
  if (session.status() != v1::SESSION_STATUS_ENDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("only an ended session; this one is ", v1::SessionStatus_Name(session.status())));
  }
  if (now > FromProtoTime(session.ended_at()) + window) {
    return absl::FailedPreconditionError(absl::StrCat(
        "too late: ", what, " within ", absl::FormatDuration(window), " of the end"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Events> Cancel(const v1::SessionState& state, const v1::CancelSession& cancel,
                              absl::Time now) {
  const v1::Session& session = state.session();
  if (session.status() == v1::SESSION_STATUS_CANCELLED) return Events{};
  if (cancel.payment_failed()) {
    // No billable time without money held: a call under way stops now;
    // payments records its minutes as unpaid. One over already is
    // payments' to settle as it is.
    if (session.status() == v1::SESSION_STATUS_LIVE ||
        session.status() == v1::SESSION_STATUS_RECONNECTING) {
      return Events{Ended(state, v1::END_REASON_PAYMENT_FAILED, "", std::max(now, LastAt(state)))};
    }
    if (!Active(session.status())) return Events{};
  }
  if (session.status() != v1::SESSION_STATUS_CREATED &&
      session.status() != v1::SESSION_STATUS_WAITING) {
    return absl::FailedPreconditionError("only a session nobody is in yet can be cancelled");
  }
  SessionsEvent event;
  event.mutable_session_cancelled()->set_reason(cancel.reason());
  event.mutable_session_cancelled()->set_payment_failed(cancel.payment_failed());
  event.mutable_session_cancelled()->set_kind(session.kind());
  event.mutable_session_cancelled()->set_expert_id(session.expert_id());
  return Events{event};
}

absl::StatusOr<Events> Review(const v1::SessionState& state, const v1::SubmitReview& review,
                              const std::string& role, absl::Time now) {
  const v1::Session& session = state.session();
  if (absl::Status ok =
          CheckAfterEnd(state, role, FromProtoDuration(review.window()), now, "review");
      !ok.ok()) {
    return ok;
  }
  if (session.has_review()) return absl::FailedPreconditionError("reviewed already");
  if (review.stars() < 1 || review.stars() > 5) {
    return errors::InvalidField("stars", "must be 1 to 5");
  }
  SessionsEvent event;
  v1::ReviewSubmitted& submitted = *event.mutable_review_submitted();
  submitted.set_expert_id(session.expert_id());
  submitted.set_person_id(session.person_id());
  submitted.set_stars(review.stars());
  submitted.set_text(review.text());
  return Events{event};
}

absl::StatusOr<Events> AskForRefund(const v1::SessionState& state,
                                    const v1::RequestRefund& refund, const std::string& role,
                                    absl::Time now) {
  const v1::Session& session = state.session();
  if (absl::Status ok = CheckAfterEnd(state, role, FromProtoDuration(refund.window()), now,
                                      "ask for a refund");
      !ok.ok()) {
    return ok;
  }
  if (session.refund_requested()) return absl::FailedPreconditionError("asked already");
  if (session.end_reason() == v1::END_REASON_PAYMENT_FAILED) {
    return absl::FailedPreconditionError("the payment failed: nothing was charged");
  }
  if (session.billing().amount().amount_minor() <= 0) {
    return absl::FailedPreconditionError("nothing was charged");
  }
  if (refund.reason().empty()) return errors::InvalidField("reason", "is required");
  SessionsEvent event;
  v1::RefundRequested& requested = *event.mutable_refund_requested();
  requested.set_person_id(session.person_id());
  requested.set_expert_id(session.expert_id());
  requested.set_reason(refund.reason());
  *requested.mutable_amount() = session.billing().amount();
  requested.set_sponsor_program_id(session.sponsor_program_id());
  return Events{event};
}

// A participant's media connected or disconnected at `at`: their time
// connected and whether they ever joined.
void Connect(v1::SessionState& state, const std::string& user_id,
             const google::protobuf::Timestamp& at, bool connected) {
  v1::Session& session = *state.mutable_session();
  bool person = user_id == session.person_id();
  google::protobuf::Timestamp* since =
      person ? state.mutable_person_since() : state.mutable_expert_since();
  google::protobuf::Duration* total =
      person ? state.mutable_person_connected_time() : state.mutable_expert_connected_time();
  if (connected) {
    *since = at;
    person ? state.set_person_joined(true) : state.set_expert_joined(true);
  } else {
    *total = ToProtoDuration(FromProtoDuration(*total) + FromProtoTime(at) - FromProtoTime(*since));
  }
  person ? session.set_person_connected(connected) : session.set_expert_connected(connected);
}

// A media connection opened (the webhook or a listing said so).
void ApplyConnectionOpened(v1::SessionState& state, const v1::ConnectionOpened& opened) {
  v1::ConnectionSpan* last = nullptr;
  for (v1::ConnectionSpan& candidate : *state.mutable_connections()) {
    if (candidate.participant_sid() == opened.participant_sid()) last = &candidate;
  }
  if (last != nullptr && !IsOpen(*last) &&
      FromProtoTime(last->opened_at()) == FromProtoTime(last->closed_at()) &&
      FromProtoTime(opened.at()) < FromProtoTime(last->closed_at())) {
    *last->mutable_opened_at() = opened.at();  // its join came after its leave
    return;
  }
  v1::ConnectionSpan& span = *state.add_connections();
  span.set_user_id(opened.user_id());
  span.set_participant_sid(opened.participant_sid());
  *span.mutable_opened_at() = opened.at();
  *state.mutable_last_at() = ToProtoTime(std::max(LastAt(state), FromProtoTime(opened.at())));
}

void ApplyConnectionClosed(v1::SessionState& state, const v1::ConnectionClosed& closed) {
  v1::ConnectionSpan* span = nullptr;
  for (v1::ConnectionSpan& candidate : *state.mutable_connections()) {
    if (candidate.participant_sid() == closed.participant_sid()) span = &candidate;
  }
  if (span == nullptr) {  // it never got media: closed from the start
    span = state.add_connections();
    span->set_user_id(closed.user_id());
    span->set_participant_sid(closed.participant_sid());
    *span->mutable_opened_at() = closed.at();
  }
  *span->mutable_closed_at() = ToProtoTime(
      std::max(FromProtoTime(span->opened_at()), FromProtoTime(closed.at())));
  span->set_closed_by_listing(closed.by_listing());
  *state.mutable_last_at() = ToProtoTime(std::max(LastAt(state), FromProtoTime(closed.at())));
}

void ApplyEnded(v1::SessionState& state, const v1::SessionEnded& ended) {
  v1::Session& session = *state.mutable_session();
  for (const std::string& user : {session.person_id(), session.expert_id()}) {
    bool connected = user == session.person_id() ? session.person_connected()
                                                 : session.expert_connected();
    if (connected) Connect(state, user, ended.at(), false);
  }
  state.clear_both_since();
  state.clear_connections();  // billed: the spans are done with
  session.set_status(v1::SESSION_STATUS_ENDED);
  *session.mutable_billable() = ended.billing().billable();
  *session.mutable_billing() = ended.billing();
  session.set_end_reason(ended.reason());
  session.set_ended_by(ended.ended_by());
  *session.mutable_ended_at() = ended.at();
  session.clear_reconnect_deadline();
  *state.mutable_last_at() = ended.at();
}

}  // namespace

bool SessionIsOver(v1::SessionStatus status) {
  return status == v1::SESSION_STATUS_ENDED || status == v1::SESSION_STATUS_CANCELLED ||
         status == v1::SESSION_STATUS_NO_SHOW;
}

v1::Billing BillFor(const catalog::v1::PriceTerms& price, absl::Duration billable,
                    int max_minutes) {
  v1::Billing billing;
  *billing.mutable_billable() = ToProtoDuration(billable);
  const runtime::v1::Money& unit =
      price.has_fixed() ? price.fixed().price() : price.per_minute().rate();
  billing.mutable_amount()->set_currency_code(unit.currency_code());
  if (billable <= absl::ZeroDuration()) return billing;
  if (price.has_fixed()) {
    billing.set_billed_minutes(price.fixed().session_minutes());
    billing.mutable_amount()->set_amount_minor(unit.amount_minor());
    return billing;
  }
  int minimum = price.per_minute().minimum_minutes();
  // Started minutes: any part of a minute counts as one.
  int64_t started = (absl::ToInt64Nanoseconds(billable) + 59'999'999'999) / 60'000'000'000;
  int billed = static_cast<int>(std::max<int64_t>(started, minimum));
  billed = std::min(billed, std::max(max_minutes, minimum));
  billing.set_billed_minutes(billed);
  billing.mutable_amount()->set_amount_minor(unit.amount_minor() * billed);
  return billing;
}

absl::StatusOr<std::vector<SessionsEvent>> SessionsDomain::Decide(
    const v1::SessionState& state, const SessionsCommand& command,
    const es::DecideContext& context) {
  if (command.body_case() == SessionsCommand::BODY_NOT_SET) {
    return errors::InvalidField("body", "a command is required");
  }
  if (command.body_case() == SessionsCommand::kCreateSession) {
    return Create(state, command.create_session(), context);
  }
  const v1::Session& session = state.session();
  if (session.status() == v1::SESSION_STATUS_UNSPECIFIED) {
    return absl::NotFoundError("no such session");
  }
  const std::string actor = Actor(context);
  const std::string role = RoleOf(session, actor);
  auto participant = [&]() -> absl::Status {
    if (role.empty()) {
      return absl::PermissionDeniedError("only the session's person and expert take part");
    }
    return absl::OkStatus();
  };
  switch (command.body_case()) {
    case SessionsCommand::kCancelSession:
      return Cancel(state, command.cancel_session(), context.now);
    case SessionsCommand::kJoinSession: {
      if (absl::Status ok = participant(); !ok.ok()) return ok;
      absl::StatusOr<Events> joined =
          Join(state, role, actor, Ordered(state, command.join_session().at(), context.now));
      // The media server says when the participant is really there.
      if (joined.ok() && FromMediaServer(session)) return Events{};
      return joined;
    }
    case SessionsCommand::kLeaveSession: {
      if (absl::Status ok = participant(); !ok.ok()) return ok;
      if (FromMediaServer(session)) return Events{};
      return Leave(state, role, actor, Ordered(state, command.leave_session().at(), context.now));
    }
    case SessionsCommand::kMediaConnection: {
      if (!FromMediaServer(session)) return Events{};
      const v1::MediaConnection& change = command.media_connection();
      if (!change.has_at()) return errors::InvalidField("media_connection.at", "is required");
      return DecideConnection(state, change.participant_sid(), change.identity(),
                              change.connected(), FromProtoTime(change.at()), Reporter::kWebhook);
    }
    case SessionsCommand::kMediaParticipants:
      if (!FromMediaServer(session)) return Events{};
      if (!command.media_participants().has_at()) {
        return errors::InvalidField("media_participants.at", "is required");
      }
      return DecideParticipants(state, command.media_participants());
    case SessionsCommand::kEndSession: {
      if (absl::Status ok = participant(); !ok.ok()) return ok;
      if (!Active(session.status())) {
        return absl::FailedPreconditionError(
            absl::StrCat("the session is ", v1::SessionStatus_Name(session.status())));
      }
      return Events{Ended(state, v1::END_REASON_BY_PARTICIPANT, actor,
                          Ordered(state, command.end_session().at(), context.now))};
    }
    case SessionsCommand::kTick:
      return Fire(state, std::max(FromProtoTime(command.tick().due()), LastAt(state)));
    case SessionsCommand::kSubmitReview:
      return Review(state, command.submit_review(), role, context.now);
    case SessionsCommand::kRequestRefund:
      return AskForRefund(state, command.request_refund(), role, context.now);
    default:
      return errors::InvalidField("body", "unknown command");
  }
}

void SessionsDomain::Apply(v1::SessionState& state, const SessionsEvent& event) {
  v1::Session& session = *state.mutable_session();
  session.set_version(event.meta().aggregate_version());
  switch (event.body_case()) {
    case SessionsEvent::kSessionCreated: {
      const v1::SessionCreated& created = event.session_created();
      session.set_session_id(event.meta().aggregate_id());
      session.set_kind(created.kind());
      session.set_person_id(created.person_id());
      session.set_expert_id(created.expert_id());
      *session.mutable_price() = created.price();
      session.set_max_minutes(created.max_minutes());
      *session.mutable_max_amount() = created.max_amount();
      session.set_sponsor_program_id(created.sponsor_program_id());
      session.set_category_id(created.category_id());
      session.set_connection_source(created.connection_source() ==
                                            v1::CONNECTION_SOURCE_UNSPECIFIED
                                        ? v1::CONNECTION_SOURCE_APPS
                                        : created.connection_source());
      session.set_status(v1::SESSION_STATUS_CREATED);
      *session.mutable_created_at() = event.meta().occurred_at();
      if (created.has_scheduled_start()) *session.mutable_scheduled_start() = created.scheduled_start();
      *session.mutable_join_deadline() = created.join_deadline();
      *state.mutable_grace_period() = created.grace_period();
      *state.mutable_last_at() = event.meta().occurred_at();
      break;
    }
    case SessionsEvent::kConnectionOpened:
      ApplyConnectionOpened(state, event.connection_opened());
      break;
    case SessionsEvent::kConnectionClosed:
      ApplyConnectionClosed(state, event.connection_closed());
      break;
    case SessionsEvent::kSessionCancelled:
      state.clear_connections();
      session.set_status(v1::SESSION_STATUS_CANCELLED);
      session.set_cancel_reason(event.session_cancelled().reason());
      break;
    case SessionsEvent::kParticipantJoined: {
      const v1::ParticipantJoined& joined = event.participant_joined();
      Connect(state, joined.user_id(), joined.at(), true);
      session.set_status(joined.status());
      if (joined.status() == v1::SESSION_STATUS_LIVE) {
        *state.mutable_both_since() = joined.at();
        session.clear_reconnect_deadline();
        if (!session.has_started_at()) *session.mutable_started_at() = joined.at();
      }
      *state.mutable_last_at() = joined.at();
      break;
    }
    case SessionsEvent::kParticipantLeft: {
      const v1::ParticipantLeft& left = event.participant_left();
      if (state.has_both_since()) {
        *session.mutable_billable() = ToProtoDuration(
            FromProtoDuration(session.billable()) + FromProtoTime(left.at()) -
            FromProtoTime(state.both_since()));
        state.clear_both_since();
      }
      Connect(state, left.user_id(), left.at(), false);
      session.set_status(left.status());
      if (left.has_reconnect_deadline()) {
        *session.mutable_reconnect_deadline() = left.reconnect_deadline();
      }
      *state.mutable_last_at() = left.at();
      break;
    }
    case SessionsEvent::kSessionEnded:
      ApplyEnded(state, event.session_ended());
      break;
    case SessionsEvent::kSessionNoShow:
      state.clear_connections();
      session.set_status(v1::SESSION_STATUS_NO_SHOW);
      *session.mutable_absent() = event.session_no_show().absent();
      *session.mutable_ended_at() = event.meta().occurred_at();
      break;
    case SessionsEvent::kReviewSubmitted: {
      v1::Review& review = *session.mutable_review();
      review.set_stars(event.review_submitted().stars());
      review.set_text(event.review_submitted().text());
      *review.mutable_submitted_at() = event.meta().occurred_at();
      break;
    }
    case SessionsEvent::kRefundRequested:
      session.set_refund_requested(true);
      break;
    case SessionsEvent::BODY_NOT_SET:
      break;
  }
}

std::optional<absl::Time> SessionsDomain::NextDeadline(const v1::SessionState& state) {
  const v1::Session& session = state.session();
  if (!Active(session.status())) return std::nullopt;
  if (!EverLive(state) && session.status() != v1::SESSION_STATUS_LIVE) {
    return FromProtoTime(session.join_deadline());
  }
  if (session.status() == v1::SESSION_STATUS_RECONNECTING) {
    return FromProtoTime(session.reconnect_deadline());
  }
  return CapAt(state);
}

SessionsCommand SessionsDomain::OnDeadline(const v1::SessionState&, absl::Time due) {
  SessionsCommand command;
  *command.mutable_tick()->mutable_due() = ToProtoTime(due);
  return command;
}

}  // namespace helpline::sessions
