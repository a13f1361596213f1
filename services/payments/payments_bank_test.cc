// The bank test: hundreds of sessions' money through helpline-payments and
// the sandbox processor on the test run's Kafka, while payments is killed
// with SIGKILL again and again. The test plays matching and sessions: it
// writes their events (matches, ends, cancels, no-shows, refunds, some
// twice, some ends before their match) in a random order, while the
// processor declines some authorisations (some slowly, after the session
// ended), some captures and some refunds. Then refunds of sessions whose
// expert was paid out already and an admin's retries of the declined
// refunds. Afterwards, from payments' own event stream and the processor's
// journal: every session's money in a final state its story explains,
// captured at most once, every split exact, the accounts summing to zero
// and no account past its limit after every single event, the journal and
// the ledger agreeing operation for operation, the sponsor funded once, and
// the experts' earnings paid out once the (sped-up) refund window passed.
#include <algorithm>
#include <atomic>
#include <map>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/payments.grpc.pb.h"
#include "helpline/payments/v1/processor.grpc.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "services/payments/domain/ledger.h"
#include "services/payments/domain/money.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/eventsourcing/topics.h"
#include "tests/support/event_writer.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"

namespace helpline::payments {
namespace {

using ::helpline::testing::Account;
using ::helpline::testing::EventWriter;
using ::helpline::testing::Platform;
using Stub = v1::PaymentsService::Stub;

constexpr int kSessions = 300;
constexpr int kExperts = 12;
constexpr int kPeople = 60;
constexpr int64_t kBudget = 30000;
constexpr int kFreeSessionsPerPerson = 2;
// Real time: services run 60 times faster (a minute a second).
constexpr double kClockRate = 60;
constexpr absl::Duration kPublishing = absl::Seconds(20);

enum class Fate { kEnded, kRefunded, kCancelled, kNoShow };

struct Story {
  std::string id;
  std::string person;
  std::string expert;
  int64_t max_amount = 0;
  bool sponsored = false;
  bool declined = false;  // the card is declined (paid sessions)
  bool capture_declined = false;
  bool refund_declined = false;  // the first refund; an admin's retry goes through
  Fate fate = Fate::kEnded;
  int64_t billed = 0;
};

// One event for the test to write at `at` (from the start of publishing).
struct Planned {
  absl::Duration at;
  std::function<absl::Status()> write;
};

runtime::v1::Money Eur(int64_t minor) {
  runtime::v1::Money money;
  money.set_currency_code("EUR");
  money.set_amount_minor(minor);
  return money;
}

// What matching writes when an expert accepts.
matching::v1::MatchingEvent MatchMade(const std::string& id, const std::string& person,
                                      const std::string& expert, int64_t rate,
                                      int64_t max_minutes, const std::string& program) {
  matching::v1::MatchingEvent match;
  matching::v1::Match& made = *match.mutable_match_made()->mutable_match();
  made.set_match_id(id);
  made.set_person_id(person);
  made.set_expert_id(expert);
  *made.mutable_price()->mutable_per_minute()->mutable_rate() = Eur(rate);
  made.mutable_price()->mutable_per_minute()->set_minimum_minutes(5);
  made.set_max_minutes(static_cast<int32_t>(max_minutes));
  *made.mutable_max_amount() = Eur(rate * max_minutes);
  made.set_category_id("bikes");
  made.set_sponsor_program_id(program);
  return match;
}

// The accounts sum to zero and no account that must not go below zero did.
::testing::AssertionResult BalancesHold(const v1::PaymentsState& state) {
  int64_t sum = 0;
  for (const auto& [id, account] : state.ledger().accounts()) {
    sum += Ledger::BalanceWithPending(account);
    if ((account.flags() & v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS) != 0 &&
        account.debits_posted() + account.debits_pending() > account.credits_posted()) {
      return ::testing::AssertionFailure() << id << " went below zero";
    }
    if ((account.flags() & v1::ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS) != 0 &&
        account.credits_posted() + account.credits_pending() > account.debits_posted()) {
      return ::testing::AssertionFailure() << id << " went above zero";
    }
  }
  if (sum != 0) return ::testing::AssertionFailure() << "the accounts sum to " << sum;
  return ::testing::AssertionSuccess();
}

class PaymentsBankTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Platform::Options options;
    options.matching = false;
    options.payments = true;
    options.clock_rate = kClockRate;
    options.payments_config = {{"payments",
                                {{"refund_window", "30m"},
                                 {"payout_batch_interval", "5m"},
                                 {"payout_minimum_minor", 1000},
                                 {"processor_timeout", "300ms"},
                                 {"processor_retry_after", "300ms"}}}};
    platform_ = new Platform();
    ASSERT_TRUE(platform_->Start("bank", options));
  }

  static void TearDownTestSuite() {
    platform_->Stop();
    delete platform_;
  }

  void SetUp() override {
    psp_ = v1::SandboxProcessorService::NewStub(
        ::helpline::testing::LocalChannel(platform_->psp().port()));
  }

  // A sponsor (an organisation's account) with a program and a funded budget.
  struct Sponsor {
    Account account;
    std::string program;
  };
  Sponsor FundedSponsor(EventWriter& catalog, int64_t budget, int free_sessions_per_person) {
    Sponsor sponsor;
    Account organisation = platform_->NewAccount(identity::v1::ACCOUNT_TYPE_ORGANISATION);
    sponsor.account = platform_->LoginWithRole(organisation.email, "sponsor");
    sponsor.program = ids::NewUuidV7();
    catalog::v1::CatalogEvent created;
    created.mutable_sponsor_program_created()->set_sponsor_id(sponsor.account.user_id);
    created.mutable_sponsor_program_created()->mutable_terms()->set_free_sessions_per_person(
        free_sessions_per_person);
    EXPECT_TRUE(catalog.Write(sponsor.program, created).ok());
    v1::FundSponsorBudgetRequest fund;
    fund.set_request_id("funding-" + sponsor.program);
    *fund.mutable_amount() = Eur(budget);
    v1::FundSponsorBudgetResponse funded;
    EXPECT_TRUE(
        Platform::Call(*Payments(), &Stub::FundSponsorBudget, sponsor.account, fund, &funded).ok());
    absl::Time ready_by = absl::Now() + absl::Seconds(30);
    bool known = false;
    bool funded_in_ledger = false;
    while (!(known && funded_in_ledger) && absl::Now() < ready_by) {
      for (const v1::PaymentsEvent& event : PaymentsEvents()) {
        known = known || event.sponsor_program_recorded().program_id() == sponsor.program;
        funded_in_ledger = funded_in_ledger ||
                           event.sponsor_budget_funded().sponsor_id() == sponsor.account.user_id;
      }
      if (!(known && funded_in_ledger)) absl::SleepFor(absl::Milliseconds(200));
    }
    EXPECT_TRUE(known) << "payments recorded the sponsor program";
    EXPECT_TRUE(funded_in_ledger) << "the budget was funded";
    return sponsor;
  }

  std::unique_ptr<Stub> Payments() {
    return v1::PaymentsService::NewStub(
        ::helpline::testing::LocalChannel(platform_->payments().port()));
  }

  // Payments' events, decoded, in the order of the ledger's partition.
  std::vector<v1::PaymentsEvent> PaymentsEvents() {
    std::vector<v1::PaymentsEvent> events;
    for (const kafka::Record& record : ::helpline::testing::ReadToEnd(
             es::ServiceTopics::For("payments", platform_->prefix()).events,
             platform_->partitions())) {
      v1::PaymentsEvent event;
      if (!event.ParseFromString(record.value)) {
        ADD_FAILURE() << "an undecodable event at offset " << record.offset;
        continue;
      }
      events.push_back(std::move(event));
    }
    std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
      return a.meta().aggregate_version() < b.meta().aggregate_version();
    });
    return events;
  }

  // The processor's whole journal, a page at a time.
  std::vector<v1::JournalEntry> Journal() {
    std::vector<v1::JournalEntry> entries;
    v1::ListJournalRequest request;
    request.set_page_size(200);
    do {
      grpc::ClientContext context;
      v1::ListJournalResponse page;
      if (!psp_->ListJournal(&context, request, &page).ok()) {
        ADD_FAILURE() << "the journal cannot be read";
        break;
      }
      entries.insert(entries.end(), page.entries().begin(), page.entries().end());
      request.set_page_token(page.next_page_token());
    } while (!request.page_token().empty());
    return entries;
  }

  void Script(const v1::ScriptRule& rule) {
    v1::ScriptRequest request;
    *request.add_rules() = rule;
    grpc::ClientContext context;
    v1::ScriptResponse response;
    ASSERT_TRUE(psp_->Script(&context, request, &response).ok());
  }

  static Platform* platform_;
  std::unique_ptr<v1::SandboxProcessorService::Stub> psp_;
};

Platform* PaymentsBankTest::platform_ = nullptr;

TEST_F(PaymentsBankTest, FiftyConcurrentSponsoredMatchesNeverOverdrawTheBudget) {
  EventWriter matching("matching", platform_->prefix());
  EventWriter catalog("catalog", platform_->prefix());
  const Sponsor sponsor = FundedSponsor(catalog, 5000, 100);
  ASSERT_FALSE(HasFailure());
  std::vector<std::string> sessions(50);
  std::vector<std::thread> writers;
  for (size_t i = 0; i < sessions.size(); ++i) {
    sessions[i] = ids::NewUuidV7();
    writers.emplace_back([&, i] {
      // 300 each (20 minutes at 15): the budget covers 16 of them.
      matching::v1::MatchingEvent match = MatchMade(
          sessions[i], absl::StrCat("fifty-", i), "fifty-expert", 15, 20, sponsor.program);
      EXPECT_TRUE(matching.Write(sessions[i], match).ok());
    });
  }
  for (std::thread& writer : writers) writer.join();

  int placed = 0;
  int failed = 0;
  std::vector<v1::PaymentsEvent> events;
  absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (placed + failed < 50 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(200));
    events = PaymentsEvents();
    std::set<std::string> ours(sessions.begin(), sessions.end());
    placed = failed = 0;
    for (const v1::PaymentsEvent& event : events) {
      placed += ours.contains(event.hold_placed().session_id());
      failed += ours.contains(event.hold_failed().session_id());
    }
  }
  EXPECT_EQ(placed, 16);
  EXPECT_EQ(failed, 34);
  v1::PaymentsState replay;
  for (const v1::PaymentsEvent& event : events) {
    PaymentsDomain::Apply(replay, event);
    ASSERT_TRUE(BalancesHold(replay)) << "at version " << event.meta().aggregate_version();
  }
  v1::GetBalanceResponse balance;
  ASSERT_TRUE(Platform::Call(*Payments(), &Stub::GetBalance,
                             platform_->LoginWithRole(sponsor.account.email, "sponsor"),
                             v1::GetBalanceRequest(), &balance)
                  .ok());
  EXPECT_EQ(balance.sponsor().budget().amount_minor(), 5000);
  EXPECT_EQ(balance.sponsor().reserved().amount_minor(), 16 * 300);
  EXPECT_EQ(balance.sponsor().spent().amount_minor(), 0);
}

TEST_F(PaymentsBankTest, MoneyAddsUpWhilePaymentsIsKilledAgainAndAgain) {
  std::mt19937_64 random(20270101);
  auto uniform = [&](int64_t low, int64_t high) {
    return std::uniform_int_distribution<int64_t>(low, high)(random);
  };
  EventWriter matching("matching", platform_->prefix());
  EventWriter sessions("sessions", platform_->prefix());
  EventWriter catalog("catalog", platform_->prefix());

  const Sponsor sponsor = FundedSponsor(catalog, kBudget, kFreeSessionsPerPerson);
  const std::string& program = sponsor.program;
  ASSERT_FALSE(HasFailure());

  // The stories, and the events that tell them, in a random order.
  std::vector<Story> stories(kSessions);
  std::vector<Planned> plan;
  for (Story& story : stories) {
    story.id = ids::NewUuidV7();
    story.person = absl::StrCat("person-", uniform(1, kPeople));
    story.expert = absl::StrCat("expert-", uniform(1, kExperts));
    const int64_t rate = uniform(50, 200);
    const int64_t max_minutes = uniform(10, 30);
    story.max_amount = rate * max_minutes;
    story.sponsored = uniform(1, 4) == 1;
    story.declined = !story.sponsored && uniform(1, 15) == 1;
    const int64_t roll = uniform(1, 100);
    story.fate = roll <= 55 ? Fate::kEnded
                 : roll <= 75 ? Fate::kRefunded
                 : roll <= 90 ? Fate::kCancelled
                              : Fate::kNoShow;
    story.billed = uniform(1, 12) == 1 ? 0 : uniform(rate * 5, story.max_amount);
    const bool paid = !story.sponsored && !story.declined && story.billed > 0;
    story.capture_declined = paid && story.fate != Fate::kCancelled &&
                             story.fate != Fate::kNoShow && uniform(1, 10) == 1;
    story.refund_declined =
        paid && !story.capture_declined && story.fate == Fate::kRefunded && uniform(1, 4) == 1;
    auto decline = [&](v1::IntentKind kind, const char* why, bool slowly) {
      v1::ScriptRule rule;
      rule.set_kind(kind);
      rule.set_reference_contains(story.id);
      rule.set_decline_reason(why);
      rule.set_times(1);
      // Slower than the worker waits: the answer comes on its retry, after
      // the session (written meanwhile) ended.
      if (slowly) rule.mutable_delay()->set_nanos(900'000'000);
      Script(rule);
    };
    if (story.declined) decline(v1::INTENT_KIND_AUTHORISE, "insufficient funds", uniform(1, 2) == 1);
    if (story.capture_declined) decline(v1::INTENT_KIND_CAPTURE, "authorisation expired", false);
    if (story.refund_declined) decline(v1::INTENT_KIND_REFUND, "card closed", false);

    matching::v1::MatchingEvent match = MatchMade(story.id, story.person, story.expert, rate,
                                                  max_minutes, story.sponsored ? program : "");
    sessions::v1::SessionsEvent outcome;
    switch (story.fate) {
      case Fate::kEnded:
      case Fate::kRefunded:
        *outcome.mutable_session_ended()->mutable_billing()->mutable_amount() = Eur(story.billed);
        break;
      case Fate::kCancelled:
        outcome.mutable_session_cancelled()->set_reason("the expert could not come");
        break;
      case Fate::kNoShow:
        outcome.mutable_session_no_show()->add_absent(story.person);
        break;
    }
    // Most outcomes come after the match; some before (payments reads the
    // two streams separately); some events are delivered twice.
    const absl::Duration match_at = absl::Milliseconds(uniform(0, absl::ToInt64Milliseconds(kPublishing)));
    const absl::Duration outcome_at =
        match_at + absl::Milliseconds(uniform(1, 10) <= 2 ? -uniform(50, 1000) : uniform(200, 2000));
    const std::string id = story.id;
    auto once_or_twice = [&](absl::Duration at, EventWriter& writer, auto event) {
      auto written = std::make_shared<decltype(event)>(event);
      const bool twice = uniform(1, 10) == 1;
      const absl::Duration again = at + absl::Milliseconds(uniform(0, 1500));
      plan.push_back({at, [&writer, written, id]() { return writer.Write(id, *written); }});
      if (twice) {
        plan.push_back({again, [&writer, written]() {
                          return writer.Rewrite(*written, written->meta());
                        }});
      }
    };
    once_or_twice(match_at, matching, match);
    once_or_twice(outcome_at, sessions, outcome);
    if (story.fate == Fate::kRefunded) {
      sessions::v1::SessionsEvent refund;
      refund.mutable_refund_requested()->set_reason("it still squeaks");
      once_or_twice(outcome_at + absl::Milliseconds(uniform(100, 1500)), sessions, refund);
    }
  }
  // Some answers come slowly: the worker times out, retries with the same
  // key and gets the recorded answer again.
  v1::ScriptRule slow;
  slow.mutable_delay()->set_nanos(600'000'000);
  slow.set_times(25);
  Script(slow);
  std::stable_sort(plan.begin(), plan.end(),
                   [](const Planned& a, const Planned& b) { return a.at < b.at; });

  // Kill payments every few seconds while the events go out (a restart
  // takes its partitions back after the dead consumers' session timeout),
  // and at least kKills times.
  constexpr int kKills = 4;
  std::atomic<bool> publishing{true};
  std::atomic<int> kills{0};
  std::thread chaos([&] {
    std::mt19937_64 chaos_random(7);
    while (publishing.load() || kills.load() < kKills) {
      absl::SleepFor(absl::Milliseconds(
          std::uniform_int_distribution<int64_t>(1500, 4000)(chaos_random)));
      platform_->payments().Kill();
      ++kills;
      EXPECT_TRUE(platform_->payments().Start()) << "payments restarts after SIGKILL";
    }
  });
  const absl::Time start = absl::Now();
  for (const Planned& planned : plan) {
    absl::Time due = start + std::max(planned.at, absl::ZeroDuration());
    if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    EXPECT_TRUE(planned.write().ok());
  }
  publishing = false;
  chaos.join();

  // Wait until every story is settled and every expert's earnings paid out.
  auto settled = [&](const std::vector<v1::PaymentsEvent>& events, std::string* missing) {
    std::map<std::string, std::vector<std::string>> seen;
    for (const v1::PaymentsEvent& event : events) {
      std::string session;
      if (event.has_hold_failed()) session = event.hold_failed().session_id();
      if (event.has_session_captured()) session = event.session_captured().session_id();
      if (event.has_session_voided()) session = event.session_voided().session_id();
      if (event.has_session_refunded()) session = event.session_refunded().session_id();
      if (event.has_capture_failed()) session = event.capture_failed().session_id();
      if (event.has_refund_failed()) session = event.refund_failed().session_id();
      if (!session.empty()) seen[session].push_back(es::EventTypeName(event));
    }
    for (const Story& story : stories) {
      const std::vector<std::string>& got = seen[story.id];
      auto has = [&](const char* type) {
        return std::find(got.begin(), got.end(), absl::StrCat("helpline.payments.v1.", type)) !=
               got.end();
      };
      bool done = has("HoldFailed") || has("CaptureFailed");
      switch (story.fate) {
        case Fate::kEnded:
          done = done || has("SessionCaptured");
          break;
        case Fate::kRefunded:
          done = done || has("SessionRefunded") || has("RefundFailed");
          break;
        default:
          done = done || has("SessionVoided");
      }
      if (!done) {
        *missing = absl::StrCat("session ", story.id, " (fate ", static_cast<int>(story.fate),
                                ") has only ", got.size(), " settlement events");
        return false;
      }
    }
    return true;
  };
  std::vector<v1::PaymentsEvent> events;
  std::string missing;
  v1::PaymentsState state;
  // Until every story is settled, no intent is open and every expert's
  // captured shares (not refunded) passed the refund window and were paid
  // out, but for less than the minimum payout.
  auto wait_until_quiet = [&](absl::Duration limit) {
    absl::Time give_up = absl::Now() + limit;
    bool quiet = false;
    while (!quiet && absl::Now() < give_up) {
      events = PaymentsEvents();
      state.Clear();
      for (const v1::PaymentsEvent& event : events) PaymentsDomain::Apply(state, event);
      quiet = settled(events, &missing) && state.open_intents().empty() &&
              state.open_payouts().empty();
      if (quiet) {
        std::set<std::string> experts;
        for (const auto& [id, money] : state.sessions()) experts.insert(money.hold().expert_id());
        for (const std::string& expert : experts) {
          int64_t earned = 0;
          for (const auto& [id, money] : state.sessions()) {
            if (money.status() == v1::SESSION_MONEY_STATUS_CAPTURED &&
                money.hold().expert_id() == expert) {
              earned += money.captured_minor() - money.captured_fee_minor();
            }
          }
          auto paid = state.paid_out().find(expert);
          const int64_t paid_out = paid == state.paid_out().end() ? 0 : paid->second;
          if (earned - paid_out >= 1000) {
            quiet = false;
            missing = absl::StrCat(expert, " earned ", earned, " but was paid ", paid_out);
          }
        }
      }
      if (!quiet) absl::SleepFor(absl::Milliseconds(500));
    }
    return quiet;
  };
  ASSERT_TRUE(wait_until_quiet(absl::Seconds(120))) << "not settled after 120 s: " << missing;

  // An admin retries the refunds the processor declined.
  int retried = 0;
  for (const Story& story : stories) {
    if (state.sessions().at(story.id).status() != v1::SESSION_MONEY_STATUS_REFUND_FAILED) {
      continue;
    }
    EXPECT_TRUE(story.refund_declined) << story.id << ": a refund failed without a decline";
    v1::RetryRefundRequest retry;
    retry.set_request_id("retry-" + story.id);
    retry.set_session_id(story.id);
    v1::RetryRefundResponse retried_response;
    EXPECT_TRUE(Platform::Call(*Payments(), &Stub::RetryRefund, platform_->Admin(), retry,
                               &retried_response)
                    .ok());
    ++retried;
  }
  // Refunds of sessions whose expert was paid out already: the share is
  // more than their payable holds now.
  std::set<std::string> refunded_after_payout;
  for (Story& story : stories) {
    const v1::SessionMoney& money = state.sessions().at(story.id);
    if (story.fate != Fate::kEnded || !money.sponsor_id().empty() ||
        money.status() != v1::SESSION_MONEY_STATUS_CAPTURED || money.captured_minor() <= 0 ||
        refunded_after_payout.contains(story.expert) || !state.paid_out().contains(story.expert) ||
        refunded_after_payout.size() == 6) {
      continue;
    }
    const v1::LedgerAccount& payable = state.ledger().accounts().at(ExpertPayable(story.expert));
    if (money.captured_minor() - money.captured_fee_minor() <= Ledger::PostedBalance(payable)) {
      continue;
    }
    sessions::v1::SessionsEvent refund;
    refund.mutable_refund_requested()->set_reason("found it broken a week later");
    ASSERT_TRUE(sessions.Write(story.id, refund).ok());
    story.fate = Fate::kRefunded;
    refunded_after_payout.insert(story.expert);
  }
  EXPECT_FALSE(refunded_after_payout.empty()) << "no paid-out session to refund";
  ASSERT_TRUE(wait_until_quiet(absl::Seconds(60)))
      << "not settled after the late refunds and retries: " << missing;



  // Replayed event by event: sums, flags, splits, at most once.
  v1::PaymentsState replay;
  std::map<std::string, int> captures;
  std::map<std::string, int> refunds;
  int budget_refusals = 0;
  for (const v1::PaymentsEvent& event : events) {
    PaymentsDomain::Apply(replay, event);
    ASSERT_TRUE(BalancesHold(replay)) << "at version " << event.meta().aggregate_version();
    if (event.has_session_captured()) {
      const v1::SessionCaptured& captured = event.session_captured();
      ++captures[captured.session_id()];
      Split split = SplitAmount(captured.amount().amount_minor(), 2000);
      EXPECT_EQ(captured.fee_minor(), split.fee);
      EXPECT_EQ(captured.fee_minor() + captured.expert_share_minor(),
                captured.amount().amount_minor());
    }
    if (event.has_session_refunded()) ++refunds[event.session_refunded().session_id()];
    if (event.has_hold_failed() &&
        event.hold_failed().reason().find("budget") != std::string::npos) {
      ++budget_refusals;
    }
  }
  int sponsored_held = 0;
  for (const Story& story : stories) {
    const v1::SessionMoney& money = replay.sessions().at(story.id);
    EXPECT_LE(captures[story.id], 1) << story.id << " captured more than once";
    EXPECT_LE(refunds[story.id], 1) << story.id << " refunded more than once";
    // Nothing is left half-way: every session's money is in a state its
    // story explains.
    EXPECT_TRUE(money.status() == v1::SESSION_MONEY_STATUS_CAPTURED ||
                money.status() == v1::SESSION_MONEY_STATUS_REFUNDED ||
                money.status() == v1::SESSION_MONEY_STATUS_VOIDED ||
                money.status() == v1::SESSION_MONEY_STATUS_FAILED ||
                money.status() == v1::SESSION_MONEY_STATUS_CAPTURE_FAILED)
        << story.id << " ended " << v1::SessionMoneyStatus_Name(money.status());
    const bool ran = story.fate == Fate::kEnded || story.fate == Fate::kRefunded;
    if (story.declined) {
      // Declined, unless cancelled before the card was asked; a session
      // that ran on a declined card is recorded as unpaid.
      const bool cancelled = story.fate == Fate::kCancelled || story.fate == Fate::kNoShow;
      EXPECT_TRUE(money.status() == v1::SESSION_MONEY_STATUS_FAILED ||
                  (cancelled && money.status() == v1::SESSION_MONEY_STATUS_VOIDED))
          << story.id << ": " << v1::SessionMoneyStatus_Name(money.status());
      EXPECT_EQ(money.unpaid_minor(), ran ? story.billed : 0) << story.id;
      EXPECT_EQ(captures[story.id], 0) << story.id;
      continue;
    }
    if (story.capture_declined) {
      EXPECT_EQ(money.status(), v1::SESSION_MONEY_STATUS_CAPTURE_FAILED) << story.id;
      EXPECT_EQ(money.unpaid_minor(), story.billed) << story.id << ": what the person owes";
      EXPECT_EQ(captures[story.id], 0) << story.id << ": nothing posted for a declined capture";
      EXPECT_EQ(refunds[story.id], 0) << story.id;
      continue;
    }
    if (money.status() == v1::SESSION_MONEY_STATUS_FAILED) {
      EXPECT_TRUE(story.sponsored) << story.id << ": only the budget or a quota refuses";
      continue;
    }
    sponsored_held += story.sponsored;
    switch (story.fate) {
      case Fate::kEnded:
        EXPECT_EQ(money.status(), v1::SESSION_MONEY_STATUS_CAPTURED) << story.id;
        EXPECT_EQ(money.captured_minor(), story.billed) << story.id;
        break;
      case Fate::kRefunded:
        EXPECT_EQ(money.status(), v1::SESSION_MONEY_STATUS_REFUNDED) << story.id;
        EXPECT_EQ(captures[story.id], 1) << story.id;
        break;
      default:
        EXPECT_EQ(money.status(), v1::SESSION_MONEY_STATUS_VOIDED) << story.id;
        EXPECT_EQ(captures[story.id], 0) << story.id;
    }
  }
  EXPECT_GT(budget_refusals, 0) << "the budget ran short at times";
  EXPECT_GT(sponsored_held, 0);
  int fundings = 0;
  for (const v1::PaymentsEvent& event : events) {
    fundings += event.sponsor_budget_funded().sponsor_id() == sponsor.account.user_id;
  }
  EXPECT_EQ(fundings, 1) << "the acknowledged funding, once";
  int64_t paid_out = 0;
  for (const auto& [expert, amount] : replay.paid_out()) paid_out += amount;
  EXPECT_GT(paid_out, 0) << "the payout batches ran";

  // The processor's journal against the ledger: one capture per paid
  // capture, same amount, and nothing else.
  std::map<std::string, int64_t> ledger_captures;
  for (const v1::PaymentsEvent& event : events) {
    if (!event.has_session_captured()) continue;
    const v1::SessionCaptured& captured = event.session_captured();
    if (replay.sessions().at(captured.session_id()).sponsor_id().empty() &&
        captured.amount().amount_minor() > 0) {
      ledger_captures[captured.session_id()] = captured.amount().amount_minor();
    }
  }
  std::map<std::string, int64_t> processor_captures;
  std::map<std::string, int> processor_capture_count;
  for (const v1::JournalEntry& entry : Journal()) {
    if (entry.kind() != v1::INTENT_KIND_CAPTURE || !entry.approved()) continue;
    processor_captures[entry.reference()] = entry.amount().amount_minor();
    ++processor_capture_count[entry.reference()];
  }
  EXPECT_EQ(processor_captures, ledger_captures);
  for (const auto& [session, count] : processor_capture_count) {
    EXPECT_EQ(count, 1) << session << " captured at the processor " << count << " times";
  }
  EXPECT_GT(ledger_captures.size(), 50u);
  // One refund at the processor per refund in the ledger, by intent, and the
  // declined ones only there, as declined.
  std::map<std::string, int64_t> ledger_refunds;
  for (const v1::PaymentsEvent& event : events) {
    if (event.has_session_refunded() && !event.session_refunded().intent_id().empty()) {
      ledger_refunds[event.session_refunded().intent_id()] =
          event.session_refunded().amount().amount_minor();
    }
  }
  std::map<std::string, int64_t> processor_refunds;
  int declined_refunds = 0;
  int declined_captures = 0;
  for (const v1::JournalEntry& entry : Journal()) {
    if (entry.kind() == v1::INTENT_KIND_REFUND && entry.approved()) {
      processor_refunds[entry.idempotency_key()] = entry.amount().amount_minor();
    }
    declined_refunds += entry.kind() == v1::INTENT_KIND_REFUND && !entry.approved();
    declined_captures += entry.kind() == v1::INTENT_KIND_CAPTURE && !entry.approved();
  }
  EXPECT_EQ(processor_refunds, ledger_refunds);
  EXPECT_EQ(declined_refunds, retried) << "each declined refund was retried once";
  EXPECT_GT(declined_captures, 0);
  EXPECT_GT(retried, 0);
  // The refunds after payouts: what the payables lacked, the experts owe.
  int64_t owed = 0;
  for (const std::string& expert : refunded_after_payout) {
    auto account = replay.ledger().accounts().find(ExpertOwed(expert));
    if (account != replay.ledger().accounts().end()) owed -= Ledger::PostedBalance(account->second);
  }
  EXPECT_GT(owed, 0) << "a refund after a payout took more than the payable held";

  // And payments' own reconciliation agrees.
  v1::ReconcileResponse reconciled;
  ASSERT_TRUE(Platform::Call(*Payments(), &Stub::Reconcile, platform_->Admin(),
                             v1::ReconcileRequest(), &reconciled)
                  .ok());
  EXPECT_TRUE(reconciled.balances_match_replay());
  EXPECT_TRUE(reconciled.processor_matches_ledger());
  EXPECT_TRUE(reconciled.flags_hold());
  EXPECT_TRUE(reconciled.accounts_sum_to_zero());
  for (const std::string& problem : reconciled.problems()) ADD_FAILURE() << problem;
  std::cout << kills.load() << " kills; " << ledger_captures.size() << " paid captures, "
            << sponsored_held << " sponsored sessions held, " << budget_refusals
            << " refused by the budget, " << events.size() << " events\n";
}

}  // namespace
}  // namespace helpline::payments
