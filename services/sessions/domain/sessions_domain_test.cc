#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/testing/domain_test_log.h"
#include "services/sessions/domain/reactions.h"
#include "services/sessions/domain/read_model.h"
#include "services/sessions/domain/sessions_domain.h"
#include "services/sessions/livekit_tokens.h"

namespace helpline::sessions {
namespace {

using Log = es::testing::DomainTestLog<SessionsDomain>;

const std::string kSession = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const std::string kPerson = "person-1";
const std::string kExpert = "expert-1";
const std::string kOutsider = "someone-else";

catalog::v1::PriceTerms PerMinute(int64_t rate, int minimum) {
  catalog::v1::PriceTerms price;
  price.mutable_per_minute()->mutable_rate()->set_currency_code("EUR");
  price.mutable_per_minute()->mutable_rate()->set_amount_minor(rate);
  price.mutable_per_minute()->set_minimum_minutes(minimum);
  return price;
}

matching::v1::MatchingEvent MatchMade(int max_minutes = 30) {
  matching::v1::MatchingEvent event;
  event.mutable_meta()->set_event_id("event-1");
  matching::v1::Match& match = *event.mutable_match_made()->mutable_match();
  match.set_match_id(kSession);
  match.set_person_id(kPerson);
  match.set_expert_id(kExpert);
  *match.mutable_price() = PerMinute(150, 5);
  match.set_max_minutes(max_minutes);
  match.mutable_max_amount()->set_currency_code("EUR");
  match.mutable_max_amount()->set_amount_minor(150 * max_minutes);
  match.set_category_id("bike-repair");
  return event;
}

// A help-now session created from MatchMade with the default windows.
void Create(Log& log, int max_minutes = 30) {
  std::vector<v1::SessionsCommand> commands = SessionsFromMatching(MatchMade(max_minutes), {});
  ASSERT_EQ(commands.size(), 1u);
  ASSERT_EQ(commands[0].meta().aggregate_id(), kSession);
  ASSERT_TRUE(log.Send(kSession, commands[0]).ok());
}

v1::SessionsCommand Join(absl::Time at) {
  v1::SessionsCommand command;
  *command.mutable_join_session()->mutable_at() = ToProtoTime(at);
  return command;
}
v1::SessionsCommand Leave(absl::Time at) {
  v1::SessionsCommand command;
  *command.mutable_leave_session()->mutable_at() = ToProtoTime(at);
  return command;
}
v1::SessionsCommand End(absl::Time at) {
  v1::SessionsCommand command;
  *command.mutable_end_session()->mutable_at() = ToProtoTime(at);
  return command;
}

// Advances the log's clock by `by` and then acts at that moment.
absl::StatusOr<std::vector<v1::SessionsEvent>> At(Log& log, absl::Duration by,
                                                  v1::SessionsCommand (*make)(absl::Time),
                                                  const std::string& actor) {
  log.Advance(by);
  return log.Send(kSession, make(log.now), actor);
}

const v1::Session& SessionOf(Log& log) { return log.StateOf(kSession).session(); }

TEST(Session, FullLifecycleBillsStartedMinutesBothWereConnected) {
  Log log;
  Create(log);
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_CREATED);
  ASSERT_TRUE(At(log, absl::Seconds(20), Join, kPerson).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_WAITING);
  ASSERT_TRUE(At(log, absl::Seconds(40), Join, kExpert).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_LIVE);
  EXPECT_EQ(FromProtoTime(SessionOf(log).started_at()), log.now);
  auto ended = At(log, absl::Minutes(11) + absl::Seconds(1), End, kExpert);
  ASSERT_TRUE(ended.ok()) << ended.status();
  const v1::SessionEnded& end = (*ended)[0].session_ended();
  EXPECT_EQ(end.reason(), v1::END_REASON_BY_PARTICIPANT);
  EXPECT_EQ(end.ended_by(), kExpert);
  EXPECT_EQ(FromProtoDuration(end.billing().billable()), absl::Minutes(11) + absl::Seconds(1));
  EXPECT_EQ(end.billing().billed_minutes(), 12) << "started minutes";
  EXPECT_EQ(end.billing().amount().amount_minor(), 12 * 150);
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_ENDED);
  EXPECT_FALSE(SessionOf(log).person_connected());
  EXPECT_EQ(log.Send(kSession, Join(log.now), kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Session, OutsidersTakeNoPart) {
  Log log;
  Create(log);
  for (auto make : {Join, Leave, End}) {
    EXPECT_EQ(log.Send(kSession, make(log.now), kOutsider).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(log.Send("no-such-session", Join(log.now), kPerson).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Session, AReconnectInsideTheGracePeriodKeepsItGoingAndTheGapIsNotBilled) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kExpert).ok());
  ASSERT_TRUE(At(log, absl::Minutes(5), Leave, kPerson).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_RECONNECTING);
  EXPECT_EQ(FromProtoTime(SessionOf(log).reconnect_deadline()), log.now + absl::Minutes(2));
  ASSERT_TRUE(At(log, absl::Seconds(90), Join, kPerson).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_LIVE);
  EXPECT_TRUE(log.Advance(absl::Minutes(5)).empty()) << "no timer fires while live under the cap";
  auto ended = log.Send(kSession, End(log.now), kPerson);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(FromProtoDuration((*ended)[0].session_ended().billing().billable()),
            absl::Minutes(10));
}

TEST(Session, NobodyBackWithinTheGracePeriodEndsItAtTheDeadline) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kExpert).ok());
  ASSERT_TRUE(At(log, absl::Minutes(3), Leave, kExpert).ok());
  std::vector<v1::SessionsEvent> fired = log.Advance(absl::Minutes(10));
  ASSERT_EQ(fired.size(), 1u);
  const v1::SessionEnded& end = fired[0].session_ended();
  EXPECT_EQ(end.reason(), v1::END_REASON_NOT_BACK);
  EXPECT_EQ(FromProtoTime(end.at()), log.now - absl::Minutes(8)) << "ended at the deadline";
  EXPECT_EQ(FromProtoDuration(end.billing().billable()), absl::Minutes(3));
  EXPECT_EQ(end.billing().billed_minutes(), 5) << "the price's minimum minutes";
}

TEST(Session, ItEndsByItselfAtTheMaximumMinutes) {
  Log log;
  Create(log, 20);
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kExpert).ok());
  ASSERT_TRUE(At(log, absl::Minutes(8), Leave, kPerson).ok());
  ASSERT_TRUE(At(log, absl::Minutes(1), Join, kPerson).ok());  // 1 min not billed
  std::vector<v1::SessionsEvent> fired = log.Advance(absl::Hours(1));
  ASSERT_EQ(fired.size(), 1u);
  const v1::SessionEnded& end = fired[0].session_ended();
  EXPECT_EQ(end.reason(), v1::END_REASON_TIME_CAP);
  EXPECT_EQ(FromProtoDuration(end.billing().billable()), absl::Minutes(20));
  EXPECT_EQ(end.billing().amount().amount_minor(), 20 * 150);
  EXPECT_EQ(FromProtoTime(end.at()), log.now - absl::Hours(1) + absl::Minutes(12));
}

TEST(Session, AnExpertWhoNeverJoinsIsANoShow) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::Minutes(1), Join, kPerson).ok());
  EXPECT_TRUE(log.Advance(absl::Seconds(119)).empty());
  std::vector<v1::SessionsEvent> fired = log.Advance(absl::Seconds(1));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(std::vector<std::string>(fired[0].session_no_show().absent().begin(),
                                     fired[0].session_no_show().absent().end()),
            std::vector<std::string>{kExpert});
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_NO_SHOW);
}

TEST(Session, APersonWhoNeverJoinsOrNobodyIsANoShowAndLateJoinsAreRefused) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::Seconds(10), Join, kExpert).ok());
  // The join arrives after the window, before the timer has fired.
  EXPECT_EQ(log.Send(kSession, Join(log.now + absl::Minutes(3)), kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "after the join window";
  std::vector<v1::SessionsEvent> fired = log.Advance(absl::Minutes(3));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].session_no_show().absent(0), kPerson);

  Log nobody;
  Create(nobody);
  fired = nobody.Advance(absl::Minutes(5));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].session_no_show().absent_size(), 2);
}

// What sessions' reaction makes of payments' HoldFailed.
v1::SessionsCommand PaymentFailed() {
  payments::v1::PaymentsEvent failed;
  failed.mutable_hold_failed()->set_session_id(kSession);
  failed.mutable_hold_failed()->set_reason("the card was declined: insufficient funds");
  std::vector<v1::SessionsCommand> commands = SessionsFromPayments(failed);
  return commands.empty() ? v1::SessionsCommand() : commands[0];
}

TEST(Reactions, AFailedHoldCancelsItsSessionAndNothingElseDoes) {
  v1::SessionsCommand cancel = PaymentFailed();
  EXPECT_EQ(cancel.meta().aggregate_id(), kSession);
  EXPECT_EQ(cancel.cancel_session().reason(), "the card was declined: insufficient funds");
  EXPECT_TRUE(cancel.cancel_session().payment_failed())
      << "a session under way ends instead of being cancelled";
  payments::v1::PaymentsEvent captured;
  captured.mutable_meta()->set_aggregate_id("ledger-EUR");
  EXPECT_TRUE(SessionsFromPayments(captured).empty());
}

TEST(Session, ABookedSessionsJoinWindowRunsFromTheSlotsStart) {
  Log log;
  matching::v1::MatchingEvent booked;
  matching::v1::Booking& booking = *booked.mutable_booking_confirmed()->mutable_booking();
  booking.set_booking_id(kSession);
  booking.set_person_id(kPerson);
  booking.set_expert_id(kExpert);
  *booking.mutable_price() = PerMinute(150, 5);
  booking.set_max_minutes(30);
  *booking.mutable_start() = ToProtoTime(log.now + absl::Hours(24));
  std::vector<v1::SessionsCommand> commands = SessionsFromMatching(booked, {});
  ASSERT_TRUE(log.Send(kSession, commands[0]).ok());
  EXPECT_EQ(SessionOf(log).kind(), v1::SESSION_KIND_BOOKED);
  EXPECT_EQ(FromProtoTime(SessionOf(log).join_deadline()),
            log.now + absl::Hours(24) + absl::Minutes(10));
  EXPECT_TRUE(log.Advance(absl::Hours(24) + absl::Minutes(9)).empty());
  EXPECT_EQ(log.Advance(absl::Minutes(1)).size(), 1u);

  // A cancelled booking cancels its session.
  Log cancelled;
  ASSERT_TRUE(cancelled.Send(kSession, commands[0]).ok());
  matching::v1::MatchingEvent cancel;
  cancel.mutable_booking_cancelled()->set_booking_id(kSession);
  cancel.mutable_booking_cancelled()->set_cancelled_by("person");
  ASSERT_TRUE(cancelled.Send(kSession, SessionsFromMatching(cancel, {})[0]).ok());
  EXPECT_EQ(cancelled.StateOf(kSession).session().status(), v1::SESSION_STATUS_CANCELLED);
  EXPECT_TRUE(cancelled.Advance(absl::Hours(48)).empty());

  // A booked session whose hold failed says so, with whose calendar it was
  // on: matching gives the slot back.
  Log declined;
  ASSERT_TRUE(declined.Send(kSession, commands[0]).ok());
  auto refused = declined.Send(kSession, PaymentFailed());
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_EQ(refused->size(), 1u);
  const v1::SessionCancelled& gone = (*refused)[0].session_cancelled();
  EXPECT_TRUE(gone.payment_failed());
  EXPECT_EQ(gone.kind(), v1::SESSION_KIND_BOOKED);
  EXPECT_EQ(gone.expert_id(), kExpert);
}

TEST(Session, ASecondMatchMadeCreatesNothingMore) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::Seconds(5), Join, kPerson).ok());
  auto again = log.Send(kSession, SessionsFromMatching(MatchMade(), {})[0]);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_WAITING) << "untouched";
}

// Property: whatever the order of joins and leaves, the billable time is
// the overlap of both participants' connections, never more than either's
// connected time.
TEST(Session, BillableTimeIsTheOverlapOfBothConnectionsForAnyOrderOfJoinsAndLeaves) {
  std::mt19937 random(20261127);
  for (int round = 0; round < 300; ++round) {
    Log log;
    Create(log, 240);
    bool connected[2] = {false, false};
    absl::Duration person_time, expert_time, overlap;
    bool live_once = false;
    for (int step = 0; step < 12; ++step) {
      absl::Duration gap = absl::Seconds(static_cast<int>(random() % 100));
      if (connected[0]) person_time += gap;
      if (connected[1]) expert_time += gap;
      if (connected[0] && connected[1]) overlap += gap;
      log.Advance(gap);
      if (SessionOf(log).status() != v1::SESSION_STATUS_CREATED &&
          SessionOf(log).status() != v1::SESSION_STATUS_WAITING &&
          SessionOf(log).status() != v1::SESSION_STATUS_LIVE &&
          SessionOf(log).status() != v1::SESSION_STATUS_RECONNECTING) {
        break;  // a timer ended it (no-show, not back)
      }
      int who = static_cast<int>(random() % 2);
      const std::string& user = who == 0 ? kPerson : kExpert;
      auto done = log.Send(kSession, connected[who] ? Leave(log.now) : Join(log.now), user);
      if (done.ok()) connected[who] = !connected[who];
      live_once = live_once || (connected[0] && connected[1]);
    }
    const v1::SessionState& state = log.StateOf(kSession);
    if (state.session().status() == v1::SESSION_STATUS_NO_SHOW) continue;
    absl::Duration billable = FromProtoDuration(state.session().billable());
    if (state.session().status() != v1::SESSION_STATUS_ENDED) {
      auto ended = log.Send(kSession, End(log.now), kPerson);
      ASSERT_TRUE(ended.ok()) << ended.status();
      billable = FromProtoDuration((*ended)[0].session_ended().billing().billable());
    } else {
      // Ended by a timer at its deadline: the model counted past it.
      overlap = std::min(overlap, billable);
    }
    EXPECT_LE(billable, FromProtoDuration(state.person_connected_time()) + absl::Seconds(0))
        << "round " << round;
    EXPECT_LE(billable, FromProtoDuration(state.expert_connected_time())) << "round " << round;
    EXPECT_EQ(billable, overlap) << "round " << round;
  }
}

TEST(Session, TheReviewIsThePersonsOnceWithinFourteenDays) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kExpert).ok());
  v1::SessionsCommand review;
  review.mutable_submit_review()->set_stars(5);
  review.mutable_submit_review()->set_text("Fixed my gears");
  *review.mutable_submit_review()->mutable_window() = ToProtoDuration(absl::Hours(24 * 14));
  EXPECT_EQ(log.Send(kSession, review, kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "not before the end";
  ASSERT_TRUE(At(log, absl::Minutes(10), End, kPerson).ok());
  EXPECT_EQ(log.Send(kSession, review, kExpert).status().code(),
            absl::StatusCode::kPermissionDenied);
  review.mutable_submit_review()->set_stars(6);
  EXPECT_EQ(log.Send(kSession, review, kPerson).status().code(),
            absl::StatusCode::kInvalidArgument);
  review.mutable_submit_review()->set_stars(5);
  auto submitted = log.Send(kSession, review, kPerson);
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ((*submitted)[0].review_submitted().expert_id(), kExpert);
  EXPECT_EQ((*submitted)[0].review_submitted().stars(), 5);
  EXPECT_EQ(log.Send(kSession, review, kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "once";

  Log late;
  Create(late);
  ASSERT_TRUE(At(late, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(late, absl::ZeroDuration(), Join, kExpert).ok());
  ASSERT_TRUE(At(late, absl::Minutes(10), End, kPerson).ok());
  late.Advance(absl::Hours(24 * 14) + absl::Seconds(1));
  EXPECT_EQ(late.Send(kSession, review, kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Session, ARefundIsAskedByThePersonWithinSeventyTwoHoursForWhatWasCharged) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kExpert).ok());
  ASSERT_TRUE(At(log, absl::Minutes(12), End, kPerson).ok());
  v1::SessionsCommand refund;
  refund.mutable_request_refund()->set_reason("The bike still squeaks");
  *refund.mutable_request_refund()->mutable_window() = ToProtoDuration(absl::Hours(72));
  EXPECT_EQ(log.Send(kSession, refund, kExpert).status().code(),
            absl::StatusCode::kPermissionDenied);
  log.Advance(absl::Hours(71));
  auto requested = log.Send(kSession, refund, kPerson);
  ASSERT_TRUE(requested.ok());
  EXPECT_EQ((*requested)[0].refund_requested().amount().amount_minor(), 12 * 150);
  EXPECT_EQ(log.Send(kSession, refund, kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition);

  Log late;
  Create(late);
  ASSERT_TRUE(At(late, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(late, absl::ZeroDuration(), Join, kExpert).ok());
  ASSERT_TRUE(At(late, absl::Minutes(12), End, kPerson).ok());
  late.Advance(absl::Hours(72) + absl::Seconds(1));
  EXPECT_EQ(late.Send(kSession, refund, kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition);
}


// Joining does not wait for the hold; when the hold fails after both joined,
// the call stops there and its minutes are billed for payments to record
// as unpaid, instead of the cancel being refused and the call going on.
TEST(Session, AHoldThatFailsWhileTheCallRunsEndsItThere) {
  Log log;
  Create(log);
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kPerson).ok());
  ASSERT_TRUE(At(log, absl::ZeroDuration(), Join, kExpert).ok());
  log.Advance(absl::Minutes(3));
  auto stopped = log.Send(kSession, PaymentFailed());
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  ASSERT_EQ(stopped->size(), 1u);
  const v1::SessionEnded& end = (*stopped)[0].session_ended();
  EXPECT_EQ(end.reason(), v1::END_REASON_PAYMENT_FAILED);
  EXPECT_EQ(end.billing().billed_minutes(), 5) << "three minutes, and the minimum is five";
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_ENDED);
  EXPECT_EQ(log.Send(kSession, Join(log.now), kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "nobody joins again";
  v1::SessionsCommand refund;
  refund.mutable_request_refund()->set_reason("cut off");
  *refund.mutable_request_refund()->mutable_window() = ToProtoDuration(absl::Hours(72));
  EXPECT_EQ(log.Send(kSession, refund, kPerson).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "nothing was taken to give back";
  auto again = log.Send(kSession, PaymentFailed());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "a session over already stays as it is";

  Log waiting;
  Create(waiting);
  ASSERT_TRUE(At(waiting, absl::ZeroDuration(), Join, kPerson).ok());
  auto cancelled = waiting.Send(kSession, PaymentFailed());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_TRUE((*cancelled)[0].has_session_cancelled()) << "before the call started: cancelled";
}

// Sessions whose connections the media server reports (LiveKit's webhooks).
void CreateFromMediaServer(Log& log) {
  SessionWindows windows;
  windows.connection_source = v1::CONNECTION_SOURCE_MEDIA_SERVER;
  ASSERT_TRUE(log.Send(kSession, SessionsFromMatching(MatchMade(), windows)[0]).ok());
  ASSERT_EQ(SessionOf(log).connection_source(), v1::CONNECTION_SOURCE_MEDIA_SERVER);
}

absl::StatusOr<std::vector<v1::SessionsEvent>> Media(Log& log, const std::string& identity,
                                                     const std::string& sid, bool connected,
                                                     absl::Time at) {
  v1::SessionsCommand command;
  v1::MediaConnection& change = *command.mutable_media_connection();
  change.set_identity(identity);
  change.set_participant_sid(sid);
  change.set_connected(connected);
  *change.mutable_at() = ToProtoTime(at);
  return log.Send(kSession, command);
}

absl::StatusOr<std::vector<v1::SessionsEvent>> Listed(
    Log& log, absl::Time at, const std::vector<std::tuple<std::string, std::string, absl::Time>>& in) {
  v1::SessionsCommand command;
  *command.mutable_media_participants()->mutable_at() = ToProtoTime(at);
  for (const auto& [identity, sid, joined] : in) {
    v1::MediaParticipant& participant = *command.mutable_media_participants()->add_participants();
    participant.set_identity(identity);
    participant.set_participant_sid(sid);
    *participant.mutable_joined_at() = ToProtoTime(joined);
    participant.set_media_connected(true);
  }
  return log.Send(kSession, command);
}

absl::Duration Billed(Log& log) { return FromProtoDuration(SessionOf(log).billing().billable()); }

// A media-server session both joined now (PA_p1 and PA_e1); when.
absl::Time BothInTheRoom(Log& log) {
  CreateFromMediaServer(log);
  EXPECT_TRUE(Media(log, kPerson, "PA_p1", true, log.now).ok());
  EXPECT_TRUE(Media(log, kExpert, "PA_e1", true, log.now).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_LIVE);
  return log.now;
}

TEST(MediaServer, TheAppsCallsHandOutTokensButOnlyLiveKitsConnectionsAreBilled) {
  Log log;
  CreateFromMediaServer(log);
  auto joined = At(log, absl::Seconds(5), Join, kPerson);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_TRUE(joined->empty()) << "the app's join is only intent";
  ASSERT_TRUE(At(log, absl::Seconds(5), Join, kExpert).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_CREATED);
  absl::Time t0 = log.now;
  ASSERT_TRUE(Media(log, kPerson, "PA_p1", true, t0 + absl::Seconds(3)).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_WAITING);
  auto live = Media(log, kExpert, "PA_e1", true, t0 + absl::Seconds(10));
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 2u);
  EXPECT_TRUE((*live)[0].has_connection_opened());
  EXPECT_EQ((*live)[1].participant_joined().status(), v1::SESSION_STATUS_LIVE);
  EXPECT_EQ(FromProtoTime(SessionOf(log).started_at()), t0 + absl::Seconds(10));
  log.now = t0 + absl::Minutes(4);
  auto left = log.Send(kSession, Leave(log.now), kPerson);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << "the app says it left; LiveKit says it is still there";
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_LIVE);
  auto ended = log.Send(kSession, End(t0 + absl::Minutes(6) + absl::Seconds(10)), kExpert);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(Billed(log), absl::Minutes(6));
  EXPECT_EQ(SessionOf(log).billing().billed_minutes(), 6);
}

TEST(MediaServer, AReconnectUnderANewParticipantIdKeepsTheIdentityConnected) {
  Log log;
  const absl::Time t0 = BothInTheRoom(log);
  // The person drops and comes back as a new participant: the gap is not billed.
  ASSERT_TRUE(Media(log, kPerson, "PA_p1", false, t0 + absl::Minutes(2)).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_RECONNECTING);
  ASSERT_TRUE(Media(log, kPerson, "PA_p2", true, t0 + absl::Minutes(2) + absl::Seconds(30)).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_LIVE);
  // The expert reconnects before the old connection is noticed gone
  // (LiveKit's DUPLICATE_IDENTITY): still connected throughout.
  auto second = Media(log, kExpert, "PA_e2", true, t0 + absl::Minutes(3));
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u) << "no join: the expert never left";
  auto first_gone = Media(log, kExpert, "PA_e1", false, t0 + absl::Minutes(3) + absl::Seconds(1));
  ASSERT_TRUE(first_gone.ok());
  ASSERT_EQ(first_gone->size(), 1u) << "no leave: PA_e2 is still open";
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_LIVE);
  // Duplicates and late copies change nothing.
  EXPECT_TRUE(Media(log, kPerson, "PA_p1", true, t0 + absl::Minutes(4))->empty());
  EXPECT_TRUE(Media(log, kExpert, "PA_e1", false, t0 + absl::Minutes(4))->empty());
  EXPECT_TRUE(Media(log, kPerson, "PA_p2", true, t0 + absl::Minutes(4))->empty());
  // Someone else in the room (an admin watching) is not a participant.
  EXPECT_TRUE(Media(log, "admin-1", "PA_a1", true, t0 + absl::Minutes(4))->empty());
  ASSERT_TRUE(Media(log, kPerson, "PA_p2", false, t0 + absl::Minutes(10)).ok());
  ASSERT_TRUE(Media(log, kExpert, "PA_e2", false, t0 + absl::Minutes(10) + absl::Seconds(2)).ok());
  EXPECT_EQ(FromProtoDuration(SessionOf(log).billable()), absl::Minutes(9) + absl::Seconds(30));
  log.now = t0 + absl::Minutes(10) + absl::Seconds(5);
  std::vector<v1::SessionsEvent> fired = log.Advance(absl::Minutes(3));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].session_ended().reason(), v1::END_REASON_NOT_BACK);
  EXPECT_EQ(Billed(log), absl::Minutes(9) + absl::Seconds(30))
      << "the overlap LiveKit reported, nothing after the first left";
}

TEST(MediaServer, TheRoomsListCatchesUpWithLostWebhooks) {
  Log log;
  CreateFromMediaServer(log);
  absl::Time t0 = log.now;
  ASSERT_TRUE(Media(log, kPerson, "PA_p1", true, t0).ok());
  // The expert's participant_joined was lost; the listing a minute later
  // has them in since t0 + 20 s.
  auto caught_up = Listed(log, t0 + absl::Minutes(1),
                          {{kPerson, "PA_p1", t0}, {kExpert, "PA_e1", t0 + absl::Seconds(20)}});
  ASSERT_TRUE(caught_up.ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_LIVE);
  EXPECT_EQ(FromProtoTime(SessionOf(log).started_at()), t0 + absl::Seconds(20));
  EXPECT_TRUE(Listed(log, t0 + absl::Minutes(2),
                     {{kPerson, "PA_p1", t0}, {kExpert, "PA_e1", t0 + absl::Seconds(20)}})
                  ->empty())
      << "nothing new";
  // The person's participant_left was lost: gone by the next listing.
  ASSERT_TRUE(Listed(log, t0 + absl::Minutes(3), {{kExpert, "PA_e1", t0 + absl::Seconds(20)}}).ok());
  EXPECT_EQ(SessionOf(log).status(), v1::SESSION_STATUS_RECONNECTING);
  EXPECT_EQ(FromProtoDuration(SessionOf(log).billable()), absl::Minutes(2) + absl::Seconds(40));
  // Someone still joining is listed, not billed, and not taken for gone.
  v1::SessionsCommand joining;
  *joining.mutable_media_participants()->mutable_at() = ToProtoTime(t0 + absl::Minutes(3) + absl::Seconds(10));
  for (const auto& [identity, sid, media] :
       std::vector<std::tuple<std::string, std::string, bool>>{{kExpert, "PA_e1", false},
                                                               {kPerson, "PA_p9", false}}) {
    v1::MediaParticipant& participant = *joining.mutable_media_participants()->add_participants();
    participant.set_identity(identity);
    participant.set_participant_sid(sid);
    participant.set_media_connected(media);
  }
  EXPECT_TRUE(log.Send(kSession, joining)->empty());
  EXPECT_FALSE(SessionOf(log).person_connected());
  EXPECT_TRUE(SessionOf(log).expert_connected()) << "listed: not gone";
  // A listing taken before a webhook that overtook it closes nothing.
  ASSERT_TRUE(Media(log, kPerson, "PA_p2", true, t0 + absl::Minutes(3) + absl::Seconds(30)).ok());
  EXPECT_TRUE(Listed(log, t0 + absl::Minutes(3) + absl::Seconds(20),
                     {{kExpert, "PA_e1", t0 + absl::Seconds(20)}})
                  ->empty());
  EXPECT_TRUE(SessionOf(log).person_connected());
  // The room finished: nobody is left.
  ASSERT_TRUE(Listed(log, t0 + absl::Minutes(4), {}).ok());
  EXPECT_FALSE(SessionOf(log).person_connected());
  EXPECT_FALSE(SessionOf(log).expert_connected());
}

TEST(MediaServer, ReportsArrivingOutOfOrderBillTheTimesLiveKitStamped) {
  Log log;
  const absl::Time t0 = BothInTheRoom(log);
  // The expert's leaving (10:03) is recorded before the person's (10:00),
  // which LiveKit had to retry.
  ASSERT_TRUE(Media(log, kExpert, "PA_e1", false, t0 + absl::Minutes(10) + absl::Seconds(3)).ok());
  ASSERT_TRUE(Media(log, kPerson, "PA_p1", false, t0 + absl::Minutes(10)).ok());
  log.now = t0 + absl::Minutes(11);
  ASSERT_TRUE(log.Send(kSession, End(log.now), kPerson).ok());
  EXPECT_EQ(Billed(log), absl::Minutes(10)) << "not the 10:03 the order of arrival suggests";
  EXPECT_EQ(SessionOf(log).billing().billed_minutes(), 10);
}

TEST(MediaServer, AListingsCloseGivesWayToTheWebhooksTimeAndALaterListing) {
  Log log;
  const absl::Time t0 = BothInTheRoom(log);
  // A listing at 5:00 does not show the person; their webhook, late, says 4:40.
  ASSERT_TRUE(Listed(log, t0 + absl::Minutes(5), {{kExpert, "PA_e1", t0}}).ok());
  EXPECT_FALSE(SessionOf(log).person_connected());
  auto late = Media(log, kPerson, "PA_p1", false, t0 + absl::Minutes(4) + absl::Seconds(40));
  ASSERT_TRUE(late.ok());
  ASSERT_EQ(late->size(), 1u);
  EXPECT_FALSE((*late)[0].connection_closed().by_listing());
  // The expert is missing from one listing only (a glitch): the next shows
  // them and they count again from then.
  ASSERT_TRUE(Listed(log, t0 + absl::Minutes(6), {}).ok());
  EXPECT_FALSE(SessionOf(log).expert_connected());
  ASSERT_TRUE(Listed(log, t0 + absl::Minutes(7), {{kExpert, "PA_e1", t0}}).ok());
  EXPECT_TRUE(SessionOf(log).expert_connected()) << "a listing's close is not final";
  EXPECT_TRUE(Media(log, kPerson, "PA_p1", true, t0 + absl::Minutes(8))->empty())
      << "a webhook's close is";
  ASSERT_TRUE(Media(log, kPerson, "PA_p2", true, t0 + absl::Minutes(8)).ok());
  log.now = t0 + absl::Minutes(9);
  ASSERT_TRUE(log.Send(kSession, End(log.now), kPerson).ok());
  EXPECT_EQ(Billed(log), absl::Minutes(4) + absl::Seconds(40) + absl::Minutes(1))
      << "0:00-4:40 and 8:00-9:00";
}

TEST(MediaServer, AJoinAfterItsLeaveAndAFinishedRoomAreTakenAsLiveKitStampedThem) {
  Log log;
  const absl::Time t0 = BothInTheRoom(log);
  // The person reconnects as PA_p2; its leave (4:00) arrives before its join (2:00).
  ASSERT_TRUE(Media(log, kPerson, "PA_p1", false, t0 + absl::Minutes(1)).ok());
  ASSERT_TRUE(Media(log, kPerson, "PA_p2", false, t0 + absl::Minutes(4)).ok());
  auto late_join = Media(log, kPerson, "PA_p2", true, t0 + absl::Minutes(2));
  ASSERT_TRUE(late_join.ok());
  ASSERT_EQ(late_join->size(), 1u) << "only the span: the person is not back now";
  EXPECT_FALSE(SessionOf(log).person_connected());
  // A listing with no join time opens at the listing's time, not 1970.
  v1::SessionsCommand listing;
  *listing.mutable_media_participants()->mutable_at() = ToProtoTime(t0 + absl::Minutes(5));
  v1::MediaParticipant& p3 = *listing.mutable_media_participants()->add_participants();
  p3.set_identity(kPerson);
  p3.set_participant_sid("PA_p3");
  p3.set_media_connected(true);
  v1::MediaParticipant& e1 = *listing.mutable_media_participants()->add_participants();
  e1.set_identity(kExpert);
  e1.set_participant_sid("PA_e1");
  e1.set_media_connected(true);
  ASSERT_TRUE(log.Send(kSession, listing).ok());
  EXPECT_TRUE(SessionOf(log).person_connected());
  // The room finishes at 6:00: final, whatever an older listing says after.
  v1::SessionsCommand finished;
  *finished.mutable_media_participants()->mutable_at() = ToProtoTime(t0 + absl::Minutes(6));
  finished.mutable_media_participants()->set_room_finished(true);
  ASSERT_TRUE(log.Send(kSession, finished).ok());
  EXPECT_FALSE(SessionOf(log).person_connected());
  *listing.mutable_media_participants()->mutable_at() = ToProtoTime(t0 + absl::Minutes(5) + absl::Seconds(30));
  EXPECT_TRUE(log.Send(kSession, listing)->empty()) << "a stale listing reopens nothing";
  log.now = t0 + absl::Minutes(8);
  ASSERT_TRUE(log.Send(kSession, End(log.now), kPerson).ok());
  EXPECT_EQ(Billed(log), absl::Minutes(1) + absl::Minutes(2) + absl::Minutes(1))
      << "0-1, 2-4 (the late join) and 5-6";
  EXPECT_EQ(log.StateOf(kSession).connections_size(), 0) << "billed: the spans are dropped";
}

TEST(MediaServer, ConnectionsOutsideTheSessionsLifeChangeNothing) {
  Log log;
  CreateFromMediaServer(log);
  EXPECT_TRUE(Media(log, kPerson, "PA_p1", true, log.now + absl::Minutes(4))->empty())
      << "after the join window";
  std::vector<v1::SessionsEvent> fired = log.Advance(absl::Minutes(5));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].session_no_show().absent_size(), 2);
  EXPECT_TRUE(Media(log, kExpert, "PA_e1", true, log.now)->empty()) << "a no-show is over";

  Log apps;
  Create(apps);  // the apps report connections: webhooks are ignored
  EXPECT_TRUE(Media(apps, kPerson, "PA_p1", true, apps.now)->empty());
  EXPECT_EQ(apps.StateOf(kSession).session().status(), v1::SESSION_STATUS_CREATED);
}

TEST(Billing, PerMinuteStartedMinutesWithTheMinimumAndFixedPrices) {
  catalog::v1::PriceTerms rate = PerMinute(200, 10);
  EXPECT_EQ(BillFor(rate, absl::ZeroDuration(), 30).amount().amount_minor(), 0);
  EXPECT_EQ(BillFor(rate, absl::Seconds(1), 30).billed_minutes(), 10);
  EXPECT_EQ(BillFor(rate, absl::Minutes(10), 30).billed_minutes(), 10);
  EXPECT_EQ(BillFor(rate, absl::Minutes(10) + absl::Milliseconds(1), 30).billed_minutes(), 11);
  EXPECT_EQ(BillFor(rate, absl::Minutes(45), 30).billed_minutes(), 30) << "never above the cap";
  catalog::v1::PriceTerms fixed;
  fixed.mutable_fixed()->mutable_price()->set_currency_code("EUR");
  fixed.mutable_fixed()->mutable_price()->set_amount_minor(2500);
  fixed.mutable_fixed()->set_session_minutes(20);
  EXPECT_EQ(BillFor(fixed, absl::Minutes(3), 20).amount().amount_minor(), 2500);
  EXPECT_EQ(BillFor(fixed, absl::ZeroDuration(), 20).amount().amount_minor(), 0);
}

TEST(RoomToken, VerifiesWithTheSecretAndGrantsThisRoomOnly) {
  RoomTokenOptions options{"api-key-1", "a-secret-of-enough-length", absl::Minutes(10)};
  absl::Time now = absl::FromUnixSeconds(1'798'761'600);
  RoomToken token = IssueRoomToken(options, kPerson, kSession, true, now);
  absl::StatusOr<auth::ParsedToken> parsed = auth::ParseToken(token.token);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->header["alg"], "HS256");
  EXPECT_EQ(HmacSha256(options.api_secret, parsed->signing_input), parsed->signature);
  EXPECT_NE(HmacSha256("another-secret", parsed->signing_input), parsed->signature);
  EXPECT_EQ(parsed->claims["iss"], "api-key-1");
  EXPECT_EQ(parsed->claims["sub"], kPerson);
  EXPECT_EQ(parsed->claims["exp"], absl::ToUnixSeconds(now + absl::Minutes(10)));
  EXPECT_EQ(token.expires_at, now + absl::Minutes(10));
  const nlohmann::json& video = parsed->claims["video"];
  EXPECT_EQ(video["room"], kSession);
  EXPECT_EQ(video["roomJoin"], true);
  EXPECT_EQ(video["canPublish"], true);
  EXPECT_EQ(video["canSubscribe"], true);
  RoomToken watch = IssueRoomToken(options, "admin-1", kSession, false, now);
  EXPECT_EQ(auth::ParseToken(watch.token)->claims["video"]["canPublish"], false);
}

TEST(ReadModel, ListsAUsersSessionsNewestFirstInPages) {
  SessionsReadModel model;
  Log log(&model);
  for (int i = 0; i < 5; ++i) {
    matching::v1::MatchingEvent event = MatchMade();
    event.mutable_match_made()->mutable_match()->set_match_id(absl::StrCat("s", i));
    v1::SessionsCommand create = SessionsFromMatching(event, {})[0];
    ASSERT_TRUE(log.Send(absl::StrCat("s", i), create).ok());
    log.now += absl::Minutes(1);
  }
  std::vector<v1::Session> first = model.SessionsOf(kExpert, std::nullopt, 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].session_id(), "s4");
  EXPECT_EQ(first[1].session_id(), "s3");
  std::vector<v1::Session> next = model.SessionsOf(
      kPerson, std::make_pair(FromProtoTime(first[1].created_at()), first[1].session_id()), 10);
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0].session_id(), "s2");
  EXPECT_TRUE(model.SessionsOf(kOutsider, std::nullopt, 10).empty());
  EXPECT_EQ(model.Session("s0")->status(), v1::SESSION_STATUS_CREATED);
}

TEST(ReadModel, CountsOpenSessionsByStatusUntilTheyAreOver) {
  SessionsReadModel model;
  Log log(&model);
  Create(log);
  using Open = std::map<v1::SessionStatus, int64_t>;
  EXPECT_EQ(model.OpenByStatus(), (Open{{v1::SESSION_STATUS_CREATED, 1}}));
  ASSERT_TRUE(At(log, absl::Seconds(5), Join, kPerson).ok());
  ASSERT_TRUE(At(log, absl::Seconds(5), Join, kExpert).ok());
  Open live = model.OpenByStatus();
  EXPECT_EQ(live[v1::SESSION_STATUS_LIVE], 1);
  EXPECT_EQ(live[v1::SESSION_STATUS_CREATED], 0);
  ASSERT_TRUE(At(log, absl::Minutes(6), End, kPerson).ok());
  for (const auto& [status, count] : model.OpenByStatus()) {
    EXPECT_EQ(count, 0) << v1::SessionStatus_Name(status) << " after the end";
  }
}

}  // namespace
}  // namespace helpline::sessions
