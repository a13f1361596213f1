#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "services/catalog/domain/catalog_test_log.h"
#include "services/matching/domain/availability.h"
#include "services/matching/domain/calls_in_progress.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/matching_test_log.h"
#include "services/matching/domain/matching_test_world.h"
#include "services/matching/domain/pricing.h"
#include "services/matching/domain/reactions.h"
#include "services/matching/domain/read_model.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::matching {
namespace {

using testing::MatchingTestLog;

const std::string kPerson = "person-1";
const std::string kOtherPerson = "person-2";
const std::string kAnna = "expert-anna";
const std::string kBen = "expert-ben";
const std::string kCara = "expert-cara";
const std::string kRequest = HelpRequestAggregate("req-1");

using testing::Eur;
using testing::Fixed;
using testing::Open;
using testing::PerMinute;
using testing::PerMinuteBudget;
using testing::World;

CandidateQuery BikeQuery() {
  CandidateQuery query;
  query.person_id = kPerson;
  query.category_id = "bike-repair";
  query.language = "de";
  query.budget = PerMinuteBudget(200);
  query.max_minutes = 30;
  return query;
}

v1::MatchingCommand OfferTo(const std::string& expert, const std::string& offer_id) {
  v1::MatchingCommand command;
  v1::OfferToExpert& offer = *command.mutable_offer_to_expert();
  offer.set_offer_id(offer_id);
  offer.set_expert_id(expert);
  *offer.mutable_price() = PerMinute(150);
  SessionTerms terms = TermsFor(offer.price(), 30);
  offer.set_max_minutes(terms.max_minutes);
  *offer.mutable_max_amount() = terms.max_amount;
  *offer.mutable_window() = ToProtoDuration(absl::Seconds(30));
  return command;
}

v1::MatchingCommand Accept(const std::string& offer_id) {
  v1::MatchingCommand command;
  command.mutable_accept_offer()->set_offer_id(offer_id);
  return command;
}

v1::MatchingCommand Decline(const std::string& offer_id) {
  v1::MatchingCommand command;
  command.mutable_decline_offer()->set_offer_id(offer_id);
  return command;
}

v1::MatchingCommand Cancel() {
  v1::MatchingCommand command;
  command.mutable_cancel_help_request();
  return command;
}

absl::StatusCode Code(const absl::StatusOr<std::vector<v1::MatchingEvent>>& result) {
  return result.status().code();
}

// --- help requests ---

TEST(HelpRequest, AcceptedOfferMakesAMatchWithEverythingSessionsAndPaymentsNeed) {
  MatchingTestLog log;
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  log.now += absl::Seconds(12);
  auto events = log.Send(kRequest, Accept("offer-1"), kAnna);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  const v1::MatchMade& made = (*events)[0].match_made();
  EXPECT_EQ(made.match().match_id(), "req-1");
  EXPECT_EQ(made.match().person_id(), kPerson);
  EXPECT_EQ(made.match().expert_id(), kAnna);
  EXPECT_EQ(made.match().price().per_minute().rate().amount_minor(), 150);
  EXPECT_EQ(made.match().max_minutes(), 30);
  EXPECT_EQ(made.match().max_amount().amount_minor(), 150 * 30);
  EXPECT_EQ(made.match().category_id(), "bike-repair");
  EXPECT_EQ(FromProtoDuration(made.waited()), absl::Seconds(12));
  EXPECT_EQ(log.StateOf(kRequest).help_request().status(), v1::HELP_REQUEST_STATUS_MATCHED);
  // Matched: nothing else is offered, accepted or cancelled.
  EXPECT_EQ(Code(log.Send(kRequest, OfferTo(kBen, "offer-2"))),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(log.Send(kRequest, Cancel(), kPerson)), absl::StatusCode::kFailedPrecondition);
}

TEST(HelpRequest, OnlyTheOfferedExpertAnswersAndOnlyWhileTheOfferIsOpen) {
  MatchingTestLog log;
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  EXPECT_EQ(Code(log.Send(kRequest, Accept("offer-1"), kBen)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(log.Send(kRequest, Accept("offer-1"), kPerson)),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(log.Send(kRequest, Decline("offer-1"), kBen)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(log.Send(kRequest, Accept("offer-x"), kAnna)),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(log.Send(kRequest, Decline("offer-1"), kAnna).ok());
  EXPECT_EQ(log.StateOf(kRequest).help_request().status(), v1::HELP_REQUEST_STATUS_WAITING);
  EXPECT_EQ(Code(log.Send(kRequest, Accept("offer-1"), kAnna)),
            absl::StatusCode::kFailedPrecondition);
}

TEST(HelpRequest, OneOfferAtATimeAndNeverTheSameExpertTwice) {
  MatchingTestLog log;
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  EXPECT_EQ(Code(log.Send(kRequest, OfferTo(kBen, "offer-2"))),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(log.Send(kRequest, Decline("offer-1"), kAnna).ok());
  EXPECT_EQ(Code(log.Send(kRequest, OfferTo(kAnna, "offer-3"))),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(log.Send(kRequest, OfferTo(kPerson, "offer-4"))),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log.Send(kRequest, OfferTo(kBen, "offer-5")).ok());
}

TEST(HelpRequest, AnUnansweredOfferExpiresAndTheRequestMovesOnToTheNextExpert) {
  World world;
  world.Expert(kAnna, "bike-repair", PerMinute(100));
  world.Expert(kBen, "bike-repair", PerMinute(150));
  MatchingTestLog log(&world.model);
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  std::vector<WaitingRequest> waiting = world.model.WaitingRequests();
  ASSERT_EQ(waiting.size(), 1u);
  std::vector<Candidate> first = world.model.CandidatesFor(waiting[0], log.now, 10);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_TRUE(log.Send(kRequest, OfferTo(first[0].expert_id, "offer-1")).ok());
  EXPECT_TRUE(world.model.WaitingRequests().empty()) << "an offered request is not waiting";
  EXPECT_EQ(world.model.OpenOffer(first[0].expert_id)->offer_id(), "offer-1");

  EXPECT_TRUE(log.Advance(absl::Seconds(29)).empty());
  std::vector<v1::MatchingEvent> fired = log.Advance(absl::Seconds(1));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].offer_expired().expert_id(), first[0].expert_id);
  EXPECT_FALSE(world.model.OpenOffer(first[0].expert_id).has_value());
  std::vector<ReservationChange> released = world.model.TakeReservationChanges();
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].offer_id, "offer-1");
  EXPECT_FALSE(released[0].matched);

  waiting = world.model.WaitingRequests();
  ASSERT_EQ(waiting.size(), 1u);
  std::vector<Candidate> next = world.model.CandidatesFor(waiting[0], log.now, 10);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_NE(next[0].expert_id, first[0].expert_id);
  EXPECT_EQ(Code(log.Send(kRequest, Accept("offer-1"), first[0].expert_id)),
            absl::StatusCode::kFailedPrecondition);
}

TEST(HelpRequest, ExpiresAfterItsWaitLimitWithdrawingAnOpenOffer) {
  MatchingTestLog log;
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  log.Advance(absl::Minutes(9) + absl::Seconds(50));
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  std::vector<v1::MatchingEvent> fired = log.Advance(absl::Seconds(10));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].help_request_expired().offer_id(), "offer-1");
  EXPECT_EQ(log.StateOf(kRequest).help_request().status(), v1::HELP_REQUEST_STATUS_EXPIRED);
  EXPECT_EQ(Code(log.Send(kRequest, Accept("offer-1"), kAnna)),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log.Advance(absl::Hours(1)).empty()) << "no timer after the end";
}

TEST(HelpRequest, OnlyThePersonCancelsAndAnOpenOfferIsWithdrawn) {
  MatchingTestLog log;
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  EXPECT_EQ(Code(log.Send(kRequest, Cancel(), kOtherPerson)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(log.Send(kRequest, Cancel(), kAnna)), absl::StatusCode::kPermissionDenied);
  auto events = log.Send(kRequest, Cancel(), kPerson);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].help_request_cancelled().offer_id(), "offer-1");
  EXPECT_EQ((*events)[0].help_request_cancelled().expert_id(), kAnna);
  EXPECT_EQ(Code(log.Send(kRequest, Cancel(), kPerson)), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(log.Send(HelpRequestAggregate("nope"), Cancel(), kPerson)),
            absl::StatusCode::kNotFound);
}

TEST(HelpRequest, AnIncompleteRequestNamesEveryBadField) {
  MatchingTestLog log;
  v1::MatchingCommand command = Open();
  command.mutable_open_help_request()->clear_category_id();
  command.mutable_open_help_request()->set_max_minutes(500);
  command.mutable_open_help_request()->clear_budget();
  auto events = log.Send(kRequest, command, kPerson);
  ASSERT_EQ(Code(events), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> fields;
  for (const auto& violation : errors::FieldViolations(events.status())) {
    fields.push_back(violation.field);
  }
  EXPECT_EQ(fields, (std::vector<std::string>{"open_help_request.category_id",
                                              "open_help_request.max_minutes",
                                              "open_help_request.budget"}));
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  EXPECT_EQ(Code(log.Send(kRequest, Open(), kPerson)), absl::StatusCode::kAlreadyExists);
}

// --- the waiting line ---

TEST(WaitingLine, WatchersHearOfTheirRequestAndOfRequestsAheadLeavingOnly) {
  World world;
  std::vector<std::vector<std::string>> told;
  world.model.OnChange([&](const std::vector<std::string>& keys) { told.push_back(keys); });
  MatchingTestLog log(&world.model);
  const std::string first = HelpRequestAggregate("r1");
  const std::string second = HelpRequestAggregate("r2");
  ASSERT_TRUE(log.Send(first, Open(), kPerson).ok());
  log.now += absl::Seconds(1);
  ASSERT_TRUE(log.Send(second, Open("bike-repair", kOtherPerson), kOtherPerson).ok());
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(told[0], std::vector<std::string>{MatchingReadModel::RequestKey("r1")});
  EXPECT_EQ(told[1], std::vector<std::string>{MatchingReadModel::RequestKey("r2")})
      << "joining at the end of the line moves nobody";

  told.clear();
  ASSERT_TRUE(log.Send(second, Cancel(), kOtherPerson).ok());
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0], (std::vector<std::string>{MatchingReadModel::RequestKey("r2"),
                                               MatchingReadModel::LineKey("bike-repair")}))
      << "leaving the line may move those behind";
  EXPECT_EQ(world.model.Request("r1")->position(), 1);
}

TEST(WaitingLine, PositionsCountEarlierOpenRequestsOfTheCategoryAndMoveUp) {
  World world;
  MatchingTestLog log(&world.model);
  const std::string first = HelpRequestAggregate("r1");
  const std::string second = HelpRequestAggregate("r2");
  const std::string third = HelpRequestAggregate("r3");
  const std::string cooking = HelpRequestAggregate("r4");
  ASSERT_TRUE(log.Send(first, Open(), kPerson).ok());
  log.now += absl::Seconds(1);
  ASSERT_TRUE(log.Send(second, Open("bike-repair", kOtherPerson), kOtherPerson).ok());
  log.now += absl::Seconds(1);
  ASSERT_TRUE(log.Send(third, Open("bike-repair", "person-3"), "person-3").ok());
  ASSERT_TRUE(log.Send(cooking, Open("cooking", "person-4"), "person-4").ok());
  EXPECT_EQ(world.model.Request("r1")->position(), 1);
  EXPECT_EQ(world.model.Request("r2")->position(), 2);
  EXPECT_EQ(world.model.Request("r3")->position(), 3);
  EXPECT_EQ(world.model.Request("r4")->position(), 1) << "another category, another line";
  EXPECT_EQ(world.model.OpenRequestsOf(kPerson), 1);

  uint64_t seen = world.model.changes();
  ASSERT_TRUE(log.Send(first, Cancel(), kPerson).ok());
  EXPECT_GT(world.model.WaitForChange(seen, absl::ZeroDuration()), seen);
  EXPECT_EQ(world.model.Request("r1")->position(), 0) << "out of the line";
  EXPECT_EQ(world.model.OpenRequestsOf(kPerson), 0);
  EXPECT_EQ(world.model.Request("r2")->position(), 1);
  EXPECT_EQ(world.model.Request("r3")->position(), 2);

  // The dispatcher serves the longest waiting first.
  std::vector<WaitingRequest> waiting = world.model.WaitingRequests();
  ASSERT_EQ(waiting.size(), 3u);
  EXPECT_EQ(waiting[0].help_request_id, "r2");
  EXPECT_EQ(waiting[1].help_request_id, "r3");
}

TEST(WaitingLine, AMatchKeepsTheExpertsReservationAndShowsTheMatch) {
  World world;
  MatchingTestLog log(&world.model);
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  EXPECT_EQ(world.model.Request("req-1")->status(), v1::HELP_REQUEST_STATUS_OFFERED);
  EXPECT_EQ(world.model.Request("req-1")->offer().description(), "My gears slip");
  ASSERT_TRUE(log.Send(kRequest, Accept("offer-1"), kAnna).ok());
  std::optional<v1::HelpRequest> matched = world.model.Request("req-1");
  EXPECT_EQ(matched->status(), v1::HELP_REQUEST_STATUS_MATCHED);
  EXPECT_EQ(matched->match().expert_id(), kAnna);
  EXPECT_FALSE(matched->has_offer());
  std::vector<ReservationChange> changes = world.model.TakeReservationChanges();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].matched);
  EXPECT_EQ(world.model.RequestOfOffer("offer-1"), "req-1");
}

TEST(WaitingLine, EndedRequestsAreForgottenAfterTheRetention) {
  MatchingReadModel model(RankingOptions{}, absl::Hours(1));
  MatchingTestLog log(&model);
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  ASSERT_TRUE(log.Send(kRequest, Cancel(), kPerson).ok());
  log.now += absl::Minutes(59);
  ASSERT_TRUE(log.Send(HelpRequestAggregate("r2"), Open(), kPerson).ok());
  EXPECT_TRUE(model.Request("req-1").has_value()) << "within the retention";
  log.now += absl::Minutes(2);
  ASSERT_TRUE(log.Send(HelpRequestAggregate("r3"), Open(), kPerson).ok());
  EXPECT_FALSE(model.Request("req-1").has_value());
  EXPECT_FALSE(model.RequestOfOffer("offer-1").has_value());
  EXPECT_TRUE(model.Request("r2").has_value()) << "open requests stay";
}

TEST(WaitingLine, AnExpertInACallGetsNoOffersAndIsFreedWhenItEnds) {
  World world;
  world.Expert(kAnna, "bike-repair", PerMinute(100));
  MatchingTestLog log(&world.model);
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(kRequest, OfferTo(kAnna, "offer-1")).ok());
  ASSERT_TRUE(log.Send(kRequest, Accept("offer-1"), kAnna).ok());
  world.model.TakeReservationChanges();
  sessions::v1::SessionsEvent created;
  created.mutable_meta()->set_aggregate_id("req-1");
  created.mutable_session_created()->set_kind(sessions::v1::SESSION_KIND_HELP_NOW);
  created.mutable_session_created()->set_expert_id(kAnna);
  world.Session(created);

  const std::string next = HelpRequestAggregate("r2");
  ASSERT_TRUE(log.Send(next, Open("bike-repair", kOtherPerson), kOtherPerson).ok());
  std::vector<WaitingRequest> waiting = world.model.WaitingRequests();
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_TRUE(world.model.CandidatesFor(waiting[0], log.now, 10).empty()) << "Anna is in a call";

  sessions::v1::SessionsEvent ended;
  ended.mutable_meta()->set_aggregate_id("req-1");
  ended.mutable_session_ended()->set_expert_id(kAnna);
  world.Session(ended);
  ASSERT_EQ(world.model.CandidatesFor(waiting[0], log.now, 10).size(), 1u);
  std::vector<ReservationChange> released = world.model.TakeReservationChanges();
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].offer_id, "offer-1");
  EXPECT_FALSE(released[0].matched) << "the match's reservation is let go";
}

sessions::v1::SessionsEvent SessionEvent(const std::string& session, const std::string& what,
                                         const std::string& expert = "") {
  sessions::v1::SessionsEvent event;
  event.mutable_meta()->set_aggregate_id(session);
  if (what == "help-now" || what == "booked") {
    event.mutable_session_created()->set_expert_id(expert);
    event.mutable_session_created()->set_kind(what == "help-now"
                                                  ? sessions::v1::SESSION_KIND_HELP_NOW
                                                  : sessions::v1::SESSION_KIND_BOOKED);
  } else if (what == "joined") {
    event.mutable_participant_joined();
  } else if (what == "ended") {
    event.mutable_session_ended();
  } else if (what == "no-show") {
    event.mutable_session_no_show();
  }
  return event;
}

TEST(CallsInProgress, ABookedSessionIsACallOnceJoinedAndAnExpertIsFreeWhenAllTheirCallsEnd) {
  CallsInProgress calls;
  EXPECT_FALSE(calls.Apply(SessionEvent("now-1", "help-now", kAnna)).has_value());
  EXPECT_TRUE(calls.InCall(kAnna)) << "a match's expert is in the call at once";
  EXPECT_TRUE(calls.UnderWay("now-1"));

  calls.Apply(SessionEvent("booked-1", "booked", kAnna));
  EXPECT_FALSE(calls.UnderWay("booked-1")) << "a booking is no call until someone joins";
  calls.Apply(SessionEvent("booked-1", "joined"));
  calls.Apply(SessionEvent("booked-1", "joined"));
  EXPECT_TRUE(calls.UnderWay("booked-1"));

  EXPECT_EQ(calls.Apply(SessionEvent("now-1", "ended")), kAnna);
  EXPECT_TRUE(calls.InCall(kAnna)) << "still in the booked call (joined twice counts once)";
  EXPECT_EQ(calls.Apply(SessionEvent("booked-1", "no-show")), kAnna);
  EXPECT_FALSE(calls.InCall(kAnna));
  EXPECT_FALSE(calls.UnderWay("booked-1"));
  EXPECT_FALSE(calls.Apply(SessionEvent("booked-1", "ended")).has_value())
      << "an end told twice names no expert";
  EXPECT_FALSE(calls.Apply(SessionEvent("unknown", "joined")).has_value());
  EXPECT_FALSE(calls.InCall(kAnna)) << "a session it never saw created counts for no one";
}

// --- ranking ---

TEST(Ranking, FiltersByCategoryTreeLanguageBudgetPresenceAndPublication) {
  World world;
  world.Expert(kAnna, "bike-repair", PerMinute(100));
  world.Expert(kBen, "repair", PerMinute(100));                    // above the category
  world.Expert(kCara, "bike-repair", PerMinute(100), "en-GB");     // another language
  world.Expert("expert-dan", "bike-repair", PerMinute(250));       // too dear
  world.Expert("expert-eve", "bike-repair", PerMinute(100), "de", false);  // unpublished
  world.Expert("expert-fay", "bike-repair", PerMinute(100));
  world.Presence("expert-fay", v1::PRESENCE_STATUS_BUSY);
  world.Expert("expert-gus", "bike-repair", PerMinute(100));
  world.Presence("expert-gus", v1::PRESENCE_STATUS_OFFLINE);
  world.Expert(kPerson, "bike-repair", PerMinute(100));            // the person themself
  absl::Time now = absl::FromUnixSeconds(1'798'761'600);
  EXPECT_EQ(world.Ranked(BikeQuery(), now), std::vector<std::string>{kAnna});

  CandidateQuery repair = BikeQuery();
  repair.category_id = "repair";  // experts below a category fit it
  EXPECT_EQ(world.Ranked(repair, now), (std::vector<std::string>{kAnna, kBen}));

  CandidateQuery excluded = repair;
  excluded.excluded = [](const std::string& id) { return id == kAnna; };
  EXPECT_EQ(world.Ranked(excluded, now), std::vector<std::string>{kBen});

  CandidateQuery english = BikeQuery();
  english.language = "en-US";
  EXPECT_EQ(world.Ranked(english, now), std::vector<std::string>{kCara});

  CandidateQuery rich = BikeQuery();
  rich.budget = PerMinuteBudget(300);
  EXPECT_EQ(world.Ranked(rich, now).size(), 2u);
}

TEST(Ranking, RatingAcceptanceAndFairnessOrderTheCandidatesDeterministically) {
  World world;
  world.Expert(kAnna, "bike-repair", PerMinute(100));
  world.Expert(kBen, "bike-repair", PerMinute(100));
  world.Expert(kCara, "bike-repair", PerMinute(100));
  absl::Time now = absl::FromUnixSeconds(1'798'761'600);
  // Alike: by id.
  EXPECT_EQ(world.Ranked(BikeQuery(), now), (std::vector<std::string>{kAnna, kBen, kCara}));

  // Cara's five-star reviews lift her to the top.
  for (int i = 0; i < 10; ++i) world.Review(kCara, 5);
  EXPECT_EQ(world.Ranked(BikeQuery(), now), (std::vector<std::string>{kCara, kAnna, kBen}));

  // Cara had many offers in the last hour: the fairness term gives the
  // others exposure; an hour later it has worn off.
  MatchingTestLog log(&world.model);
  for (int i = 0; i < 4; ++i) {
    std::string request = HelpRequestAggregate(absl::StrCat("fair-", i));
    log.now = now;
    ASSERT_TRUE(log.Send(request, Open("bike-repair", absl::StrCat("p", i)), "p").ok());
    ASSERT_TRUE(log.Send(request, OfferTo(kCara, absl::StrCat("o", i))).ok());
    ASSERT_TRUE(log.Send(request, Accept(absl::StrCat("o", i)), kCara).ok());
  }
  EXPECT_EQ(world.Ranked(BikeQuery(), now).back(), kCara);
  EXPECT_EQ(world.Ranked(BikeQuery(), now + absl::Minutes(61)).front(), kCara);

  // Ben declines a lot: his acceptance rate puts him below Anna.
  for (int i = 0; i < 5; ++i) {
    std::string request = HelpRequestAggregate(absl::StrCat("decline-", i));
    log.now = now - absl::Hours(3);
    ASSERT_TRUE(log.Send(request, Open("bike-repair", absl::StrCat("q", i)), "q").ok());
    ASSERT_TRUE(log.Send(request, OfferTo(kBen, absl::StrCat("d", i))).ok());
    ASSERT_TRUE(log.Send(request, Decline(absl::StrCat("d", i)), kBen).ok());
  }
  std::vector<std::string> later = world.Ranked(BikeQuery(), now + absl::Hours(2));
  EXPECT_EQ(later, (std::vector<std::string>{kCara, kAnna, kBen}));
}

TEST(Ranking, ASponsorProgramPaysForTheExpertsItCoversAndCapsTheMinutes) {
  World world;
  world.Expert(kAnna, "bike-repair", PerMinute(500));  // above any budget
  world.Expert(kBen, "cooking", PerMinute(100));
  absl::Time now = absl::FromUnixSeconds(1'798'761'600);
  world.Program("sponsor-program:p1", {"repair"}, now - absl::Hours(1));
  world.Program("sponsor-program:later", {"repair"}, now + absl::Hours(1));
  CandidateQuery query = BikeQuery();
  EXPECT_TRUE(world.Ranked(query, now).empty());
  query.sponsor_program_id = "sponsor-program:p1";
  std::vector<Candidate> sponsored = world.model.WithPool(
      [&](const CandidatePool& pool) { return pool.Rank(query, now, 10); });
  ASSERT_EQ(sponsored.size(), 1u);
  EXPECT_EQ(sponsored[0].expert_id, kAnna);
  EXPECT_EQ(sponsored[0].terms.max_minutes, 20);
  EXPECT_EQ(sponsored[0].terms.max_amount.amount_minor(), 500 * 20);
  query.sponsor_program_id = "sponsor-program:later";
  EXPECT_TRUE(world.Ranked(query, now).empty()) << "not in effect yet";
}

// --- pricing ---

TEST(Pricing, TheHoldCoversTheLongestSessionAndTheBudgetDecidesWhoFits) {
  SessionTerms per_minute = TermsFor(PerMinute(150, 10), 30);
  EXPECT_EQ(per_minute.max_minutes, 30);
  EXPECT_EQ(per_minute.max_amount.amount_minor(), 4500);
  EXPECT_EQ(TermsFor(PerMinute(150, 10), 5).max_amount.amount_minor(), 1500) << "minimum minutes";
  SessionTerms fixed = TermsFor(Fixed(2500, 20), 30);
  EXPECT_EQ(fixed.max_minutes, 20);
  EXPECT_EQ(fixed.max_amount.amount_minor(), 2500);
  EXPECT_EQ(TermsFor(PerMinute(150), 30, 15).max_minutes, 15) << "sponsor cap";

  EXPECT_DOUBLE_EQ(*BudgetFit(PerMinuteBudget(200), PerMinute(150), per_minute), 0.25);
  EXPECT_DOUBLE_EQ(*BudgetFit(PerMinuteBudget(150), PerMinute(150), per_minute), 0.0);
  EXPECT_FALSE(BudgetFit(PerMinuteBudget(149), PerMinute(150), per_minute));
  v1::Budget total;
  *total.mutable_max_total() = Eur(4000);
  EXPECT_FALSE(BudgetFit(total, PerMinute(150, 10), per_minute)) << "30 minutes cost 4500";
  EXPECT_TRUE(BudgetFit(total, Fixed(2500, 20), fixed));
  // A fixed price against a per-minute budget: the price over the session's minutes.
  EXPECT_TRUE(BudgetFit(PerMinuteBudget(125), Fixed(2500, 20), fixed));
  EXPECT_FALSE(BudgetFit(PerMinuteBudget(124), Fixed(2500, 20), fixed));
  v1::Budget dollars;
  dollars.mutable_max_per_minute()->set_currency_code("USD");
  dollars.mutable_max_per_minute()->set_amount_minor(1000);
  EXPECT_FALSE(BudgetFit(dollars, PerMinute(150), per_minute));
}

// --- calendars ---

v1::MatchingCommand Book(const std::string& booking_id, absl::Time start, int minutes,
                         const std::string& person = kPerson) {
  v1::MatchingCommand command;
  v1::BookSlot& book = *command.mutable_book_slot();
  book.set_booking_id(booking_id);
  book.set_person_id(person);
  *book.mutable_start() = ToProtoTime(start);
  book.set_minutes(minutes);
  *book.mutable_price() = PerMinute(150);
  *book.mutable_max_amount() = Eur(150 * minutes);
  *book.mutable_minimum_notice() = ToProtoDuration(absl::Hours(2));
  book.set_max_open_per_person(10);
  return command;
}

v1::MatchingCommand CancelBooking(const std::string& booking_id) {
  v1::MatchingCommand command;
  command.mutable_cancel_booking()->set_booking_id(booking_id);
  *command.mutable_cancel_booking()->mutable_free_until_before() =
      ToProtoDuration(absl::Hours(12));
  return command;
}

TEST(Calendar, BookingsNeverOverlapButMayTouch) {
  MatchingTestLog log;
  const std::string calendar = CalendarId(kAnna);
  absl::Time ten = log.now + absl::Hours(10);
  auto booked = log.Send(calendar, Book("b1", ten, 30), kPerson);
  ASSERT_TRUE(booked.ok()) << booked.status();
  const v1::Booking& booking = (*booked)[0].booking_confirmed().booking();
  EXPECT_EQ(booking.expert_id(), kAnna);
  EXPECT_EQ(FromProtoTime(booking.end()), ten + absl::Minutes(30));
  EXPECT_EQ(booking.max_amount().amount_minor(), 4500);

  for (auto [start, minutes] : std::vector<std::pair<absl::Time, int>>{
           {ten, 30}, {ten - absl::Minutes(10), 15}, {ten + absl::Minutes(29), 30},
           {ten - absl::Minutes(5), 60}}) {
    EXPECT_EQ(Code(log.Send(calendar, Book("b2", start, minutes), kOtherPerson)),
              absl::StatusCode::kFailedPrecondition)
        << absl::FormatTime(start) << " for " << minutes;
  }
  EXPECT_TRUE(log.Send(calendar, Book("b3", ten + absl::Minutes(30), 30), kOtherPerson).ok());
  EXPECT_TRUE(log.Send(calendar, Book("b4", ten - absl::Minutes(30), 30), kOtherPerson).ok());
  EXPECT_EQ(Code(log.Send(calendar, Book("b1", ten + absl::Hours(5), 30), kPerson)),
            absl::StatusCode::kAlreadyExists);
  // A cancelled booking frees its time.
  ASSERT_TRUE(log.Send(calendar, CancelBooking("b1"), kPerson).ok());
  EXPECT_TRUE(log.Send(calendar, Book("b5", ten, 30), kOtherPerson).ok());
}

// One person cannot fill an expert's calendar: three bookings still to come
// at a time; cancelled and ended ones do not count.
TEST(Calendar, OnePersonHoldsAtMostThreeBookingsWithAnExpert) {
  MatchingTestLog log;
  const std::string calendar = CalendarId(kAnna);
  auto capped = [](v1::MatchingCommand command) {
    command.mutable_book_slot()->clear_max_open_per_person();  // the default
    return command;
  };
  absl::Time first = log.now + absl::Hours(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(log.Send(calendar, capped(Book(absl::StrCat("b", i), first + absl::Hours(i), 30)),
                         kPerson)
                    .ok());
  }
  auto fourth = log.Send(calendar, capped(Book("b3", first + absl::Hours(5), 30)), kPerson);
  EXPECT_EQ(Code(fourth), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(fourth.status().message(), "at most 3")) << fourth.status();
  EXPECT_TRUE(
      log.Send(calendar, capped(Book("other", first + absl::Hours(6), 30, kOtherPerson)),
               kOtherPerson)
          .ok())
      << "other people still book";
  ASSERT_TRUE(log.Send(calendar, CancelBooking("b1"), kPerson).ok());
  EXPECT_TRUE(log.Send(calendar, capped(Book("b4", first + absl::Hours(7), 30)), kPerson).ok())
      << "a cancelled booking no longer counts";
  log.now = first + absl::Minutes(31);  // b0 is over
  EXPECT_TRUE(log.Send(calendar, capped(Book("b5", first + absl::Hours(8), 30)), kPerson).ok())
      << "an ended booking no longer counts";
}

TEST(Calendar, ABookingWhosePaymentHoldFailedGivesItsSlotBack) {
  MatchingTestLog log;
  const std::string calendar = CalendarId(kAnna);
  absl::Time start = log.now + absl::Hours(24);
  ASSERT_TRUE(log.Send(calendar, Book("b1", start, 30), kPerson).ok());

  // Sessions cancelled the booked session: the card said no.
  sessions::v1::SessionsEvent cancelled;
  cancelled.mutable_meta()->set_aggregate_id("b1");
  cancelled.mutable_session_cancelled()->set_reason("card declined");
  cancelled.mutable_session_cancelled()->set_payment_failed(true);
  cancelled.mutable_session_cancelled()->set_kind(sessions::v1::SESSION_KIND_BOOKED);
  cancelled.mutable_session_cancelled()->set_expert_id(kAnna);
  std::vector<v1::MatchingCommand> reaction = MatchingFromSessions(cancelled);
  ASSERT_EQ(reaction.size(), 1u);
  EXPECT_EQ(reaction[0].meta().aggregate_id(), calendar);
  auto events = log.Send(calendar, reaction[0]);  // as Helpline, not a user
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  const v1::BookingCancelled& by_platform = (*events)[0].booking_cancelled();
  EXPECT_EQ(by_platform.booking_id(), "b1");
  EXPECT_EQ(by_platform.cancelled_by(), "platform");
  EXPECT_EQ(by_platform.reason(), "card declined");
  EXPECT_FALSE(by_platform.late()) << "no fee: the person did not cancel";
  EXPECT_EQ(log.StateOf(calendar).calendar().bookings().at("b1").status(), v1::BOOKING_STATUS_CANCELLED);
  // The slot is free again, and the same reaction twice changes nothing.
  EXPECT_TRUE(log.Send(calendar, Book("b2", start, 30, kOtherPerson), kOtherPerson).ok());
  auto again = log.Send(calendar, reaction[0]);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->empty());

  // Only a failed payment of a booked session gives a slot back.
  cancelled.mutable_session_cancelled()->set_payment_failed(false);
  EXPECT_TRUE(MatchingFromSessions(cancelled).empty()) << "the booking's own cancellation";
  cancelled.mutable_session_cancelled()->set_payment_failed(true);
  cancelled.mutable_session_cancelled()->set_kind(sessions::v1::SESSION_KIND_HELP_NOW);
  EXPECT_TRUE(MatchingFromSessions(cancelled).empty()) << "a match has no booking";
  // A user cannot cancel someone else's booking however the command reads.
  v1::MatchingCommand forged = reaction[0];
  forged.mutable_cancel_booking()->set_booking_id("b2");
  EXPECT_EQ(Code(log.Send(calendar, forged, kPerson)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(log.Send(calendar, forged, kOtherPerson)), absl::StatusCode::kPermissionDenied)
      << "not even the booking's own person, for free after the start";
  // Helpline's other commands (timers, sweeps) are not a failed payment.
  v1::MatchingCommand other = forged;
  other.mutable_cancel_booking()->set_payment_failed(false);
  EXPECT_EQ(Code(log.Send(calendar, other)), absl::StatusCode::kPermissionDenied);
  // A failed payment of a booking the calendar no longer holds changes nothing.
  forged.mutable_cancel_booking()->set_booking_id("long-gone");
  auto forgotten = log.Send(calendar, forged);
  ASSERT_TRUE(forgotten.ok()) << forgotten.status();
  EXPECT_TRUE(forgotten->empty());
}

TEST(Calendar, TheMinimumNoticeAndTheExpertsOwnTimeAreRefused) {
  MatchingTestLog log;
  const std::string calendar = CalendarId(kAnna);
  EXPECT_EQ(Code(log.Send(calendar, Book("b1", log.now + absl::Minutes(119), 30), kPerson)),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log.Send(calendar, Book("b2", log.now + absl::Hours(2), 30), kPerson).ok());
  EXPECT_EQ(Code(log.Send(calendar, Book("b3", log.now + absl::Hours(5), 30, kAnna), kAnna)),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Calendar, CancellingIsFreeUntilTwelveHoursBeforeForThePersonAndAlwaysForTheExpert) {
  MatchingTestLog log;
  const std::string calendar = CalendarId(kAnna);
  absl::Time start = log.now + absl::Hours(24);
  ASSERT_TRUE(log.Send(calendar, Book("early", start, 30), kPerson).ok());
  ASSERT_TRUE(log.Send(calendar, Book("late", start + absl::Hours(1), 30), kPerson).ok());
  ASSERT_TRUE(log.Send(calendar, Book("expert", start + absl::Hours(2), 30), kPerson).ok());
  ASSERT_TRUE(log.Send(calendar, Book("started", start + absl::Hours(3), 30), kPerson).ok());

  EXPECT_EQ(Code(log.Send(calendar, CancelBooking("early"), kOtherPerson)),
            absl::StatusCode::kPermissionDenied);
  auto early = log.Send(calendar, CancelBooking("early"), kPerson);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE((*early)[0].booking_cancelled().late());
  EXPECT_EQ((*early)[0].booking_cancelled().cancelled_by(), "person");
  EXPECT_EQ(Code(log.Send(calendar, CancelBooking("early"), kPerson)),
            absl::StatusCode::kFailedPrecondition);

  log.now += absl::Hours(13) + absl::Minutes(1);  // "late" starts in 11 h 59 min
  auto late = log.Send(calendar, CancelBooking("late"), kPerson);
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE((*late)[0].booking_cancelled().late());
  auto by_expert = log.Send(calendar, CancelBooking("expert"), kAnna);
  ASSERT_TRUE(by_expert.ok());
  EXPECT_FALSE((*by_expert)[0].booking_cancelled().late());
  EXPECT_EQ((*by_expert)[0].booking_cancelled().cancelled_by(), "expert");

  log.now = start + absl::Hours(3);
  EXPECT_EQ(Code(log.Send(calendar, CancelBooking("started"), kPerson)),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(log.Send(calendar, CancelBooking("none"), kPerson)), absl::StatusCode::kNotFound);
}

// --- availability ---

TEST(Availability, SlotsMustLieInsideAWindowOfTheDayInTheExpertsZone) {
  // Monday 9:00-12:00 in Berlin (ValidContent).
  catalog::v1::Availability berlin = catalog::testing::ValidContent().availability();
  absl::TimeZone zone;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &zone));
  // Monday 2027-01-04.
  auto at = [&](int hour, int minute) {
    return absl::FromCivil(absl::CivilMinute(2027, 1, 4, hour, minute), zone);
  };
  EXPECT_TRUE(CheckInAvailability(berlin, at(9, 0), 60).ok());
  EXPECT_TRUE(CheckInAvailability(berlin, at(11, 30), 30).ok());
  EXPECT_EQ(CheckInAvailability(berlin, at(11, 45), 30).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckInAvailability(berlin, at(8, 59), 30).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckInAvailability(berlin, at(10, 0) + absl::Hours(24), 30).code(),
            absl::StatusCode::kFailedPrecondition)
      << "Tuesday has no window";
  // 9:00 UTC is 10:00 in Berlin in winter.
  EXPECT_TRUE(
      CheckInAvailability(berlin, absl::FromCivil(absl::CivilMinute(2027, 1, 4, 9, 0),
                                                  absl::UTCTimeZone()), 30)
          .ok());
  // A dated exception replaces the weekday's windows.
  catalog::v1::AvailabilityException& exception = *berlin.add_exceptions();
  exception.mutable_date()->set_year(2027);
  exception.mutable_date()->set_month(1);
  exception.mutable_date()->set_day(4);
  catalog::v1::TimeRange& afternoon = *exception.add_times();
  afternoon.set_start_minute(14 * 60);
  afternoon.set_end_minute(16 * 60);
  EXPECT_FALSE(CheckInAvailability(berlin, at(9, 0), 30).ok());
  EXPECT_TRUE(CheckInAvailability(berlin, at(14, 0), 120).ok());
  EXPECT_TRUE(CheckInAvailability(berlin, at(9, 0) + absl::Hours(24 * 7), 30).ok())
      << "the next Monday is a normal one";
}

// --- an account deleted in identity ---

TEST(Erasure, ADeletedAccountsRequestsAndBookingsToComeAreCancelledByThePlatform) {
  MatchingReadModel read_model;
  MatchingTestLog log(&read_model);
  const std::string calendar = CalendarId(kAnna);
  const absl::Time start = log.now + absl::Hours(24);
  ASSERT_TRUE(log.Send(kRequest, Open(), kPerson).ok());
  ASSERT_TRUE(log.Send(calendar, Book("b1", start, 30), kPerson).ok());
  ASSERT_TRUE(log.Send(calendar, Book("b2", start + absl::Hours(1), 30, kOtherPerson), kOtherPerson)
                  .ok());

  identity::v1::IdentityEvent deleted;
  deleted.mutable_meta()->set_aggregate_id(kPerson);
  deleted.mutable_account_deleted();
  AccountLookups lookups{
      [&](const std::string& person) { return read_model.OpenRequestIdsOf(person); },
      [&](const std::string& user) { return read_model.BookingsOf(user, log.now, false); }};
  std::vector<v1::MatchingCommand> reaction = MatchingFromIdentity(deleted, lookups);
  ASSERT_EQ(reaction.size(), 2u) << "the person's request and booking, not the other person's";
  EXPECT_EQ(reaction[0].meta().aggregate_id(), kRequest);
  EXPECT_EQ(reaction[1].meta().aggregate_id(), calendar);
  EXPECT_EQ(reaction[1].cancel_booking().booking_id(), "b1");

  // A user's command cannot pass for the platform's.
  EXPECT_EQ(Code(log.Send(kRequest, reaction[0], kPerson)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(log.Send(calendar, reaction[1], kPerson)), absl::StatusCode::kPermissionDenied);

  auto request_cancelled = log.Send(kRequest, reaction[0]);
  ASSERT_TRUE(request_cancelled.ok()) << request_cancelled.status();
  ASSERT_EQ(request_cancelled->size(), 1u);
  EXPECT_EQ((*request_cancelled)[0].help_request_cancelled().reason(),
            "the person's account was deleted");
  auto booking_cancelled = log.Send(calendar, reaction[1]);
  ASSERT_TRUE(booking_cancelled.ok()) << booking_cancelled.status();
  ASSERT_EQ(booking_cancelled->size(), 1u);
  const v1::BookingCancelled& cancelled = (*booking_cancelled)[0].booking_cancelled();
  EXPECT_EQ(cancelled.cancelled_by(), "platform");
  EXPECT_EQ(cancelled.reason(), "the person's account was deleted");
  EXPECT_FALSE(cancelled.late()) << "no fee";

  // Read again (after a crash), the event finds nothing left to end.
  EXPECT_TRUE(MatchingFromIdentity(deleted, lookups).empty());
  EXPECT_TRUE(log.Send(kRequest, reaction[0])->empty());
  EXPECT_TRUE(log.Send(calendar, reaction[1])->empty());

  // The expert's deletion ends the other person's booking with them.
  deleted.mutable_meta()->set_aggregate_id(kAnna);
  reaction = MatchingFromIdentity(deleted, lookups);
  ASSERT_EQ(reaction.size(), 1u);
  EXPECT_EQ(reaction[0].cancel_booking().booking_id(), "b2");
  EXPECT_EQ(reaction[0].cancel_booking().reason(), "the expert's account was deleted");

  // A booking under way is left to end as it will.
  log.now = start + absl::Hours(1) + absl::Minutes(5);
  auto started = log.Send(calendar, reaction[0]);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_TRUE(started->empty());
}

}  // namespace
}  // namespace helpline::matching
