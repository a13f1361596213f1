#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/payments/domain/money.h"
#include "services/runtime/core/proto_time.h"
#include "services/sessions/domain/sessions_domain.h"
#include "tools/whatif/report.h"
#include "tools/whatif/simulation.h"

namespace helpline::whatif {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

runtime::v1::Money Eur(int64_t minor) {
  runtime::v1::Money money;
  money.set_currency_code("EUR");
  money.set_amount_minor(minor);
  return money;
}

catalog::v1::PriceTerms PerMinute(int64_t rate, int minimum) {
  catalog::v1::PriceTerms price;
  *price.mutable_per_minute()->mutable_rate() = Eur(rate);
  price.mutable_per_minute()->set_minimum_minutes(minimum);
  return price;
}

// Writes a recording the way the services would have: catalog facts,
// presence, and whole journeys from the help request to the money.
class Log {
 public:
  Log() {
    Catalog(kStart, "category-tree", [](catalog::v1::CatalogEvent& e) {
      e.mutable_category_created()->set_category_id("bikes");
      e.mutable_category_created()->set_name("Bikes");
    });
  }

  void Expert(const std::string& id, int64_t rate, int stars = 0) {
    Catalog(kStart, id, [&](catalog::v1::CatalogEvent& e) {
      catalog::v1::ProfileContent& live = *e.mutable_expert_approved()->mutable_live();
      live.set_public_name(id);
      live.add_category_ids("bikes");
      live.add_languages("de");
      *live.mutable_price() = PerMinute(rate, 5);
    });
    Catalog(kStart, id, [](catalog::v1::CatalogEvent& e) { e.mutable_profile_published(); });
    matching::v1::MatchingEvent online = Matching(kStart, "presence:" + id);
    online.mutable_expert_went_online()->set_expert_id(id);
    online.mutable_expert_went_online()->set_status(matching::v1::PRESENCE_STATUS_AVAILABLE);
    recording.Apply(online);
    if (stars > 0) {
      sessions::v1::SessionsEvent review = Sessions(kStart, "review-" + id);
      review.mutable_review_submitted()->set_expert_id(id);
      review.mutable_review_submitted()->set_stars(stars);
      for (int i = 0; i < 10; ++i) recording.Apply(review);
    }
  }

  void Program(const std::string& id) {
    Catalog(kStart, id, [](catalog::v1::CatalogEvent& e) {
      catalog::v1::SponsorProgramTerms& terms =
          *e.mutable_sponsor_program_created()->mutable_terms();
      terms.add_category_ids("bikes");
      terms.set_max_minutes_per_session(30);
      *terms.mutable_active_from() = ToProtoTime(kStart);
    });
  }

  // A help request asked at `at`, offered to each of `declined` (who said
  // no after `answer`) then to `expert`, who accepted after `answer`; the
  // call lasted `call`, billed at `rate` per minute with `bps` commission,
  // refunded `refund_after` the end if set.
  void Journey(const std::string& id, absl::Time at, const std::string& expert, int64_t rate,
               absl::Duration answer, absl::Duration call, int32_t bps = 2000,
               std::optional<absl::Duration> refund_after = std::nullopt,
               const std::string& program = "") {
    const std::string request = "help-request:" + id;
    Ask(request, at, program);
    absl::Time offered_at = at;
    const std::string offer = "offer-" + id;
    Offer(request, offer, expert, offered_at);
    const absl::Time matched_at = offered_at + answer;
    matching::v1::MatchingEvent match = Matching(matched_at, request);
    match.mutable_match_made()->set_offer_id(offer);
    match.mutable_match_made()->mutable_match()->set_match_id(id);
    match.mutable_match_made()->mutable_match()->set_expert_id(expert);
    match.mutable_match_made()->mutable_match()->set_category_id("bikes");
    *match.mutable_match_made()->mutable_waited() = ToProtoDuration(matched_at - at);
    recording.Apply(match);

    const absl::Time ended_at = matched_at + call;
    sessions::v1::SessionsEvent ended = Sessions(ended_at, id);
    ended.mutable_session_ended()->set_expert_id(expert);
    ended.mutable_session_ended()->set_category_id("bikes");
    *ended.mutable_session_ended()->mutable_at() = ToProtoTime(ended_at);
    *ended.mutable_session_ended()->mutable_billing() =
        sessions::BillFor(PerMinute(rate, 5), call, 30);
    recording.Apply(ended);

    payments::v1::PaymentsEvent hold = Payments(matched_at);
    hold.mutable_hold_placed()->mutable_hold()->set_session_id(id);
    hold.mutable_hold_placed()->mutable_hold()->set_expert_id(expert);
    hold.mutable_hold_placed()->mutable_hold()->set_commission_bps(bps);
    hold.mutable_hold_placed()->mutable_hold()->set_sponsor_program_id(program);
    *hold.mutable_hold_placed()->mutable_hold()->mutable_max_amount() = Eur(rate * 30);
    recording.Apply(hold);
    Captured(id, ended_at, ended.session_ended().billing().amount().amount_minor(), bps);
    if (refund_after) {
      sessions::v1::SessionsEvent asked = Sessions(ended_at + *refund_after, id);
      asked.mutable_refund_requested()->set_expert_id(expert);
      recording.Apply(asked);
      payments::v1::PaymentsEvent refunded = Payments(ended_at + *refund_after);
      refunded.mutable_session_refunded()->set_session_id(id);
      recording.Apply(refunded);
    }
  }

  // A slot booked a day ahead with `expert` at `rate`: the call lasted
  // `call`, or the person cancelled late and paid the minimum (5 minutes).
  void Booking(const std::string& id, const std::string& expert, absl::Time start, int64_t rate,
               absl::Duration call, int32_t bps, bool cancelled_late = false) {
    matching::v1::MatchingEvent booked = Matching(start - absl::Hours(24), "calendar:" + expert);
    matching::v1::Booking& booking = *booked.mutable_booking_confirmed()->mutable_booking();
    booking.set_booking_id(id);
    booking.set_expert_id(expert);
    *booking.mutable_start() = ToProtoTime(start);
    *booking.mutable_price() = PerMinute(rate, 5);
    booking.set_max_minutes(30);
    recording.Apply(booked);
    sessions::v1::SessionsEvent created = Sessions(start - absl::Hours(24), id);
    created.mutable_session_created()->set_expert_id(expert);
    created.mutable_session_created()->set_category_id("bikes");
    recording.Apply(created);
    payments::v1::PaymentsEvent hold = Payments(start - absl::Hours(24));
    hold.mutable_hold_placed()->mutable_hold()->set_session_id(id);
    hold.mutable_hold_placed()->mutable_hold()->set_expert_id(expert);
    hold.mutable_hold_placed()->mutable_hold()->set_commission_bps(bps);
    recording.Apply(hold);
    if (cancelled_late) {
      matching::v1::MatchingEvent cancelled = Matching(start - absl::Hours(1), "calendar:" + expert);
      cancelled.mutable_booking_cancelled()->set_booking_id(id);
      cancelled.mutable_booking_cancelled()->set_cancelled_by("person");
      cancelled.mutable_booking_cancelled()->set_late(true);
      recording.Apply(cancelled);
      Captured(id, start - absl::Hours(1), rate * 5, bps);
      return;
    }
    sessions::v1::SessionsEvent ended = Sessions(start + call, id);
    ended.mutable_session_ended()->set_expert_id(expert);
    *ended.mutable_session_ended()->mutable_at() = ToProtoTime(start + call);
    *ended.mutable_session_ended()->mutable_billing() =
        sessions::BillFor(PerMinute(rate, 5), call, 30);
    recording.Apply(ended);
    Captured(id, start + call, ended.session_ended().billing().amount().amount_minor(), bps);
  }

  // `count` journeys of "ana" at `rate`, an hour apart from Hour(1): each
  // accepted after 5 s, a 10-minute call, refunded `refund_after` the end
  // if set.
  void SteadyJourneys(int count, int64_t rate,
                      std::optional<absl::Duration> refund_after = std::nullopt) {
    for (int i = 0; i < count; ++i) {
      Journey(absl::StrCat("s", i), kStart + absl::Hours(i + 1), "ana", rate, absl::Seconds(5),
              absl::Minutes(10), 2000, refund_after);
    }
  }

  // A help request nobody was offered, cancelled by the person `after`.
  void GaveUp(const std::string& id, absl::Time at, absl::Duration after) {
    const std::string request = "help-request:" + id;
    Ask(request, at);
    matching::v1::MatchingEvent cancelled = Matching(at + after, request);
    cancelled.mutable_help_request_cancelled()->set_person_id("person-" + request);
    recording.Apply(cancelled);
  }

  void Captured(const std::string& id, absl::Time at, int64_t amount, int32_t bps) {
    const payments::Split split = payments::SplitAmount(amount, bps);
    payments::v1::PaymentsEvent captured = Payments(at);
    captured.mutable_session_captured()->set_session_id(id);
    *captured.mutable_session_captured()->mutable_amount() = Eur(amount);
    captured.mutable_session_captured()->set_fee_minor(split.fee);
    captured.mutable_session_captured()->set_expert_share_minor(split.expert_share);
    recording.Apply(captured);
  }


  // A help request offered to `expert`, who let the offer run out; then
  // the request expired.
  void Unanswered(const std::string& id, absl::Time at, const std::string& expert) {
    const std::string request = "help-request:" + id;
    Ask(request, at);
    Offer(request, "offer-" + id, expert, at);
    matching::v1::MatchingEvent ran_out = Matching(at + absl::Seconds(30), request);
    ran_out.mutable_offer_expired()->set_offer_id("offer-" + id);
    ran_out.mutable_offer_expired()->set_expert_id(expert);
    recording.Apply(ran_out);
    matching::v1::MatchingEvent expired = Matching(at + absl::Minutes(10), request);
    expired.mutable_help_request_expired();
    recording.Apply(expired);
  }

  Recording& Finished() {
    recording.Finish();
    return recording;
  }

  Recording recording;

 private:
  template <class F>
  void Catalog(absl::Time at, const std::string& aggregate, F fill) {
    catalog::v1::CatalogEvent event;
    event.mutable_meta()->set_aggregate_id(aggregate);
    *event.mutable_meta()->mutable_occurred_at() = ToProtoTime(at);
    fill(event);
    recording.Apply(event);
  }
  matching::v1::MatchingEvent Matching(absl::Time at, const std::string& aggregate) {
    matching::v1::MatchingEvent event;
    event.mutable_meta()->set_aggregate_id(aggregate);
    *event.mutable_meta()->mutable_occurred_at() = ToProtoTime(at);
    return event;
  }
  sessions::v1::SessionsEvent Sessions(absl::Time at, const std::string& aggregate) {
    sessions::v1::SessionsEvent event;
    event.mutable_meta()->set_aggregate_id(aggregate);
    *event.mutable_meta()->mutable_occurred_at() = ToProtoTime(at);
    return event;
  }
  payments::v1::PaymentsEvent Payments(absl::Time at) {
    payments::v1::PaymentsEvent event;
    event.mutable_meta()->set_aggregate_id("ledger:EUR");
    *event.mutable_meta()->mutable_occurred_at() = ToProtoTime(at);
    return event;
  }
  void Ask(const std::string& request, absl::Time at, const std::string& program = "") {
    matching::v1::MatchingEvent asked = Matching(at, request);
    asked.mutable_help_requested()->set_person_id("person-" + request);
    asked.mutable_help_requested()->set_category_id("bikes");
    asked.mutable_help_requested()->set_language("de");
    *asked.mutable_help_requested()->mutable_budget()->mutable_max_per_minute() = Eur(1000);
    asked.mutable_help_requested()->set_max_minutes(30);
    asked.mutable_help_requested()->set_sponsor_program_id(program);
    *asked.mutable_help_requested()->mutable_expires_at() = ToProtoTime(at + absl::Minutes(10));
    recording.Apply(asked);
  }
  void Offer(const std::string& request, const std::string& offer, const std::string& expert,
             absl::Time at) {
    matching::v1::MatchingEvent offered = Matching(at, request);
    offered.mutable_expert_offered()->set_offer_id(offer);
    offered.mutable_expert_offered()->set_expert_id(expert);
    *offered.mutable_expert_offered()->mutable_expires_at() = ToProtoTime(at + absl::Seconds(30));
    recording.Apply(offered);
  }
};

absl::Time Hour(int n) { return kStart + absl::Hours(n); }

TEST(WhatIf, TheRecordedFiguresAndPolicyComeFromTheEvents) {
  Log log;
  log.Expert("ana", 100);
  log.Expert("ben", 120);
  log.Journey("s1", Hour(1), "ana", 100, absl::Seconds(4), absl::Minutes(12), 2000,
              absl::Hours(2));
  log.Journey("s2", Hour(2), "ben", 120, absl::Seconds(8), absl::Minutes(3), 1500);
  log.Journey("s3", Hour(3), "ana", 100, absl::Seconds(6), absl::Minutes(7));
  log.Unanswered("s4", Hour(4), "ben");
  const Recording& recording = log.Finished();

  Outcome recorded = RecordedOutcome(recording, {});
  EXPECT_EQ(recorded.requests, 4);
  EXPECT_EQ(recorded.matched, 3);
  EXPECT_EQ(recorded.expired, 1);
  EXPECT_EQ(recorded.offers, 4);
  EXPECT_EQ(Percentile(recorded.waits, 50), absl::Seconds(6));
  // 12 min at 1.00 refunded; 5 (the minimum) at 1.20 at 15%; 7 at 1.00 at 20%.
  EXPECT_EQ(recorded.sessions, 3);
  EXPECT_EQ(recorded.revenue_minor, 1200 + 600 + 700);
  EXPECT_EQ(recorded.refunds, 1);
  EXPECT_EQ(recorded.refunded_minor, 1200);
  EXPECT_EQ(recorded.commission_minor, 90 + 140);
  EXPECT_EQ(recorded.expert_earnings_minor, 510 + 560);
  EXPECT_EQ(recorded.experts["ana"].earnings_minor, 560);
  EXPECT_EQ(recorded.experts["ben"].offers, 2);

  Policy policy = RecordedPolicy(recording, Policy{});
  EXPECT_EQ(policy.offer_window, absl::Seconds(30));
  EXPECT_EQ(policy.commission.default_bps, 2000);
  EXPECT_EQ(policy.commission.For("bikes", ""), 2000);

  // Only what was asked inside the window counts.
  Outcome later = RecordedOutcome(recording, {Hour(2), Hour(4)});
  EXPECT_EQ(later.requests, 2);
  EXPECT_EQ(later.revenue_minor, 600 + 700);
}

// One expert who always accepts after 5 s, calls of 10 minutes, requests an
// hour apart: the recorded policy simulated comes out as recorded.
TEST(WhatIf, TheRecordedPolicyReproducesARecordingOfSteadyHabits) {
  Log log;
  log.Expert("ana", 100);
  log.SteadyJourneys(8, 100);
  const Recording& recording = log.Finished();
  const Outcome recorded = RecordedOutcome(recording, {});
  const Outcome simulated = Simulate(recording, RecordedPolicy(recording, {}), {}, 1);
  EXPECT_EQ(simulated.requests, recorded.requests);
  EXPECT_EQ(simulated.matched, 8);
  EXPECT_EQ(simulated.offers, recorded.offers);
  EXPECT_EQ(Percentile(simulated.waits, 90), absl::Seconds(5));
  EXPECT_EQ(simulated.revenue_minor, recorded.revenue_minor);
  EXPECT_EQ(simulated.commission_minor, recorded.commission_minor);
  EXPECT_EQ(simulated.expert_earnings_minor, recorded.expert_earnings_minor);
}

TEST(WhatIf, AShorterOfferWindowLosesTheSlowExpertsAnswers) {
  Log log;
  log.Expert("slow", 100, /*stars=*/5);  // ranked first
  log.Expert("quick", 100, /*stars=*/3);
  for (int i = 0; i < 4; ++i) {
    log.Journey(absl::StrCat("a", i), Hour(i + 1), "slow", 100, absl::Seconds(25),
                absl::Minutes(10));
    log.Journey(absl::StrCat("b", i), Hour(i + 1) + absl::Minutes(1), "quick", 100,
                absl::Seconds(5), absl::Minutes(10));
  }
  const Recording& recording = log.Finished();
  const Policy recorded = RecordedPolicy(recording, {});
  Policy shorter = recorded;
  shorter.offer_window = absl::Seconds(20);
  const Outcome before = Simulate(recording, recorded, {}, 1);
  const Outcome after = Simulate(recording, shorter, {}, 1);

  EXPECT_GT(before.experts.at("slow").earnings_minor, 0);
  EXPECT_EQ(after.experts.at("slow").sessions, 0);
  EXPECT_GT(after.experts.at("slow").offers, 0);
  EXPECT_EQ(after.matched, before.matched);  // the quick one took them all
  EXPECT_GT(after.offers, before.offers);
  EXPECT_GT(Percentile(after.waits, 90), Percentile(before.waits, 90));
}

TEST(WhatIf, CommissionAndMinimumMinutesChangeTheMoneyAndEverySplitSums) {
  Log log;
  log.Expert("ana", 133);
  log.SteadyJourneys(6, 133);
  const Recording& recording = log.Finished();
  Policy policy = RecordedPolicy(recording, {});
  policy.commission.default_bps = 1550;
  policy.minimum_minutes = 15;
  const Outcome outcome = Simulate(recording, policy, {}, 1);
  ASSERT_EQ(outcome.sessions, 6);
  // 10-minute calls billed at the new 15-minute minimum: 15 × 1.33 = 19.95,
  // of which 15.5% is 3.09225, rounded half up to 3.09.
  EXPECT_EQ(outcome.revenue_minor, 6 * 1995);
  EXPECT_EQ(outcome.commission_minor, 6 * 309);
  EXPECT_EQ(outcome.commission_minor + outcome.expert_earnings_minor,
            outcome.revenue_minor - outcome.refunded_minor);
}

TEST(WhatIf, AShorterRefundWindowRefusesTheRefundsAskedLate) {
  Log log;
  log.Expert("ana", 100);
  log.SteadyJourneys(5, 100, /*refund_after=*/absl::Hours(30));
  const Recording& recording = log.Finished();
  const Policy recorded = RecordedPolicy(recording, {});
  Policy shorter = recorded;
  shorter.refund_window = absl::Hours(24);
  const Outcome before = Simulate(recording, recorded, {}, 1);
  const Outcome after = Simulate(recording, shorter, {}, 1);
  EXPECT_EQ(before.refunds, 5);
  EXPECT_EQ(before.commission_minor, 0);
  EXPECT_EQ(after.refunds, 0);
  EXPECT_EQ(after.commission_minor, 5 * 200);
  EXPECT_EQ(after.revenue_minor, before.revenue_minor);
}

TEST(WhatIf, AStrongerFairnessTermSpreadsTheOffers) {
  Log log;
  log.Expert("ana", 100, 5);
  log.Expert("ben", 100, 4);
  log.Expert("cem", 100, 4);
  for (int i = 0; i < 12; ++i) {
    log.Journey(absl::StrCat("s", i), kStart + absl::Minutes(20 * (i + 1)), "ana", 100,
                absl::Seconds(5), absl::Minutes(10));
  }
  const Recording& recording = log.Finished();
  Policy unfair = RecordedPolicy(recording, {});
  unfair.ranking.fairness_weight = 0;
  Policy fair = unfair;
  fair.ranking.fairness_weight = 2;
  const std::vector<std::string> experts = recording.Experts();
  auto offer_counts = [&](const Outcome& outcome) {
    std::vector<double> counts;
    for (const std::string& expert : experts) {
      counts.push_back(static_cast<double>(outcome.experts.at(expert).offers));
    }
    return counts;
  };
  const Outcome before = Simulate(recording, unfair, {}, 1);
  const Outcome after = Simulate(recording, fair, {}, 1);
  EXPECT_EQ(before.experts.at("ana").offers, 12);
  EXPECT_LT(Gini(offer_counts(after)), Gini(offer_counts(before)));
  EXPECT_GT(after.experts.at("ben").offers, 0);
  EXPECT_GT(after.experts.at("cem").offers, 0);
}

TEST(WhatIf, TheSameSeedGivesTheSameOutcomeAndTheReportShowsBoth) {
  Log log;
  log.Expert("ana", 100);
  log.Expert("ben", 90);
  for (int i = 0; i < 10; ++i) {
    if (i % 3 == 0) {
      log.Unanswered(absl::StrCat("u", i), Hour(i), i % 2 ? "ana" : "ben");
    } else {
      log.Journey(absl::StrCat("s", i), Hour(i), i % 2 ? "ana" : "ben", i % 2 ? 100 : 90,
                  absl::Seconds(3 + i), absl::Minutes(2 + i));
    }
  }
  const Recording& recording = log.Finished();
  Report report;
  report.recorded_policy = RecordedPolicy(recording, {});
  report.what_if_policy = report.recorded_policy;
  report.what_if_policy.offer_window = absl::Seconds(8);
  report.recorded = RecordedOutcome(recording, {});
  report.seed = 7;
  for (uint64_t seed : {7, 8, 9}) {
    report.simulated_recorded_policy.push_back(
        Simulate(recording, report.recorded_policy, {}, seed));
    report.simulated_what_if.push_back(Simulate(recording, report.what_if_policy, {}, seed));
  }
  report.experts = recording.Experts();
  report.assumptions = Assumptions(recording);
  const Outcome again = Simulate(recording, report.what_if_policy, {}, 7);
  EXPECT_EQ(again.offers, report.simulated_what_if[0].offers);
  EXPECT_EQ(again.waits, report.simulated_what_if[0].waits);
  EXPECT_EQ(again.revenue_minor, report.simulated_what_if[0].revenue_minor);

  const std::string table = ReportTable(report);
  EXPECT_NE(table.find("offer window"), std::string::npos);
  EXPECT_NE(table.find("8s"), std::string::npos);
  EXPECT_NE(table.find("Gini of earnings"), std::string::npos);
  const std::string json = ReportJson(report);
  EXPECT_NE(json.find("\"simulated_what_if\""), std::string::npos);
  EXPECT_NE(json.find("\"offer_window_seconds\": 8.0"), std::string::npos);
  EXPECT_NE(json.find("\"runs\": 3"), std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(json);
  std::vector<int64_t> offers;
  for (const Outcome& run : report.simulated_what_if) offers.push_back(run.offers);
  std::sort(offers.begin(), offers.end());
  EXPECT_EQ(parsed["outcomes"]["simulated_what_if"]["offers"], offers[1]) << "the median run";
  EXPECT_EQ(parsed["outcomes"]["simulated_what_if"]["per_run"]["offers"].size(), 3u);
  EXPECT_NE(table.find("medians of 3 runs (seeds 7 to 9)"), std::string::npos);
  EXPECT_NE(json.find(absl::StrCat("\"requests\": ", report.recorded.requests)),
            std::string::npos);
}

TEST(WhatIf, OnlyTheWindowsRequestsAndBookingsAreSimulated) {
  Log log;
  log.Expert("ana", 100);
  log.SteadyJourneys(6, 100);
  log.Booking("b1", "ana", Hour(2) + absl::Minutes(30), 100, absl::Minutes(10), 2000);
  log.Booking("b2", "ana", Hour(5) + absl::Minutes(30), 100, absl::Minutes(10), 2000);
  const Recording& recording = log.Finished();
  const Window window{Hour(4), Hour(6)};  // s3, s4 and b2
  const Outcome recorded = RecordedOutcome(recording, window);
  const Outcome simulated = Simulate(recording, RecordedPolicy(recording, {}), window, 1);
  EXPECT_EQ(recorded.requests, 2);
  EXPECT_EQ(recorded.sessions, 3);
  EXPECT_EQ(simulated.requests, 2);
  EXPECT_EQ(simulated.matched, 2);
  EXPECT_EQ(simulated.sessions, 3);
  EXPECT_EQ(simulated.revenue_minor, recorded.revenue_minor);
}

// Payments charges a booking the rate of no category, and a person who
// cancels late the minimum: both as recorded under the recorded policy.
TEST(WhatIf, BookingsAndLateCancellationsAreBilledAsPaymentsBillsThem) {
  Log log;
  log.Expert("ana", 100);
  log.Journey("s1", Hour(1), "ana", 100, absl::Seconds(5), absl::Minutes(20), 1500);
  log.Journey("s2", Hour(2), "ana", 100, absl::Seconds(5), absl::Minutes(20), 1500);
  log.Booking("b1", "ana", Hour(3), 100, absl::Minutes(20), 2000);
  log.Booking("b2", "ana", Hour(4), 100, absl::Minutes(20), 2000);
  log.Booking("b3", "ana", Hour(5), 100, absl::Minutes(20), 2000, /*cancelled_late=*/true);
  const Recording& recording = log.Finished();
  const Policy policy = RecordedPolicy(recording, {});
  EXPECT_EQ(policy.commission.default_bps, 2000);
  EXPECT_EQ(policy.commission.For("bikes", ""), 1500);
  const Outcome recorded = RecordedOutcome(recording, {});
  EXPECT_EQ(recorded.sessions, 5);
  EXPECT_EQ(recorded.revenue_minor, 2 * 2000 + 2 * 2000 + 500);
  EXPECT_EQ(recorded.commission_minor, 2 * 300 + 2 * 400 + 100);
  const Outcome simulated = Simulate(recording, policy, {}, 1);
  EXPECT_EQ(simulated.sessions, 5);
  EXPECT_EQ(simulated.revenue_minor, recorded.revenue_minor);
  EXPECT_EQ(simulated.commission_minor, recorded.commission_minor);
}

TEST(WhatIf, ASponsorProgramKeepsItsOwnRateOnlyWhereItHadOne) {
  Log log;
  log.Expert("ana", 100);
  log.Program("sponsor-program:free");
  log.Program("sponsor-program:plain");
  log.Journey("s1", Hour(1), "ana", 100, absl::Seconds(5), absl::Minutes(10), 2000);
  log.Journey("s2", Hour(2), "ana", 100, absl::Seconds(5), absl::Minutes(10), 0, std::nullopt,
              "sponsor-program:free");
  log.Journey("s3", Hour(3), "ana", 100, absl::Seconds(5), absl::Minutes(10), 2000, std::nullopt,
              "sponsor-program:plain");
  const Recording& recording = log.Finished();
  const Policy policy = RecordedPolicy(recording, {});
  EXPECT_EQ(policy.commission.For("bikes", "sponsor-program:free"), 0);
  EXPECT_FALSE(policy.commission.program_bps.contains("sponsor-program:plain"));
  Policy cheaper = policy;
  ASSERT_TRUE(payments::ParseCommissionOverrides("category:bikes=1000", cheaper.commission).ok());
  const Outcome outcome = Simulate(recording, cheaper, {}, 1);
  EXPECT_EQ(outcome.commission_minor, 100 + 0 + 100) << "the plain program follows its category";
}

TEST(WhatIf, APersonWhoGaveUpGivesUpAfterTheSameWait) {
  Log log;
  log.GaveUp("g1", Hour(1), absl::Minutes(2));
  log.Expert("ana", 2000);  // beyond the person's budget
  const Recording& recording = log.Finished();
  const Outcome simulated = Simulate(recording, RecordedPolicy(recording, {}), {}, 1);
  EXPECT_EQ(simulated.cancelled, 1);
  EXPECT_EQ(simulated.matched, 0);
  EXPECT_EQ(RecordedOutcome(recording, {}).cancelled, 1);
}

TEST(WhatIf, GiniAndPercentiles) {
  EXPECT_DOUBLE_EQ(Gini({1, 1, 1, 1}), 0);
  EXPECT_DOUBLE_EQ(Gini({0, 0, 0, 4}), 0.75);
  EXPECT_DOUBLE_EQ(Gini({0, 0}), 0);
  std::vector<absl::Duration> waits;
  for (int i = 1; i <= 10; ++i) waits.push_back(absl::Seconds(i));
  EXPECT_EQ(Percentile(waits, 50), absl::Seconds(5));
  EXPECT_EQ(Percentile(waits, 90), absl::Seconds(9));
  EXPECT_EQ(Percentile({}, 90), absl::ZeroDuration());
}

}  // namespace
}  // namespace helpline::whatif
