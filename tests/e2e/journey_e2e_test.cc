// The journey of DESIGN.md against the five services as processes on the
// test run's Kafka and Redis, on a clock 60 times faster (a minute a
// second): a person asks for bike-repair help now, is matched, both join,
// 12 minutes are billed per minute with the exact split; the review moves
// the expert's rating in search; a sponsored session is free for the person
// and paid from the sponsor's budget; a refund under the guarantee reverses
// both postings; after the refund window the expert's payout empties the
// available earnings; the ledger sums to zero and reconciles.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/payments.grpc.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/topics.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"

namespace helpline {
namespace {

using ::helpline::testing::Account;
using ::helpline::testing::Eventually;
using ::helpline::testing::LocalChannel;
using ::helpline::testing::Platform;
using CatalogStub = catalog::v1::CatalogService::Stub;
using PaymentsStub = payments::v1::PaymentsService::Stub;
using SessionsStub = sessions::v1::SessionsService::Stub;

class JourneyE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Platform::Options options;
    options.sessions = true;
    options.payments = true;
    options.clock_rate = 60;
    // Windows long enough for a test's real seconds.
    options.matching_config = {
        {"matching", {{"offer_window", "10m"}, {"request_wait_limit", "2h"}, {"match_hold", "1h"}}}};
    options.sessions_config = {{"sessions", {{"help_now_join_window", "1h"}}}};
    options.payments_config = {
        {"payments", {{"refund_window", "10m"}, {"payout_batch_interval", "744h"}}}};
    platform_ = new Platform();
    ASSERT_TRUE(platform_->Start("journey", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop()) << "clean shutdown on SIGTERM";
    delete platform_;
  }

  void SetUp() override {
    catalog_ = catalog::v1::CatalogService::NewStub(LocalChannel(platform_->catalog().port()));
    sessions_ = sessions::v1::SessionsService::NewStub(LocalChannel(platform_->sessions().port()));
    payments_ = payments::v1::PaymentsService::NewStub(LocalChannel(platform_->payments().port()));
  }

  // Access tokens live 15 minutes of service time: 15 real seconds here.
  static Account Fresh(const Account& who) { return platform_->Login(who.email); }

  payments::v1::GetBalanceResponse BalanceUntil(
      const Account& who, const std::function<bool(const payments::v1::GetBalanceResponse&)>& check) {
    return Eventually<payments::v1::GetBalanceResponse>(
        [&] {
          payments::v1::GetBalanceResponse balance;
          EXPECT_TRUE(Platform::Call(*payments_, &PaymentsStub::GetBalance, Fresh(who),
                                     payments::v1::GetBalanceRequest(), &balance)
                          .ok());
          return balance;
        },
        check);
  }

  sessions::v1::Session SessionUntil(const Account& who, const std::string& id,
                                     sessions::v1::SessionStatus status) {
    return Eventually<sessions::v1::Session>(
        [&] {
          sessions::v1::GetSessionRequest get;
          get.set_session_id(id);
          sessions::v1::GetSessionResponse got;
          Platform::Call(*sessions_, &SessionsStub::GetSession, Fresh(who), get, &got).IgnoreError();
          return got.session();
        },
        [&](const sessions::v1::Session& session) { return session.status() == status; });
  }

  // Both join, `real` seconds pass (as many minutes of service time), the
  // expert ends the call; the session as ended.
  sessions::v1::Session Call(const Account& person, const Account& expert, const std::string& id,
                             absl::Duration real) {
    SessionUntil(person, id, sessions::v1::SESSION_STATUS_CREATED);
    for (const Account& who : {person, expert}) {
      sessions::v1::JoinSessionRequest join;
      join.set_session_id(id);
      sessions::v1::JoinSessionResponse joined;
      EXPECT_TRUE(
          Platform::Call(*sessions_, &SessionsStub::JoinSession, Fresh(who), join, &joined).ok());
    }
    absl::SleepFor(real);
    sessions::v1::EndSessionRequest end;
    end.set_session_id(id);
    sessions::v1::EndSessionResponse ended;
    EXPECT_TRUE(Platform::Call(*sessions_, &SessionsStub::EndSession, Fresh(expert), end, &ended).ok());
    return SessionUntil(person, id, sessions::v1::SESSION_STATUS_ENDED);
  }

  static Platform* platform_;
  std::unique_ptr<CatalogStub> catalog_;
  std::unique_ptr<SessionsStub> sessions_;
  std::unique_ptr<PaymentsStub> payments_;
};

Platform* JourneyE2eTest::platform_ = nullptr;

TEST_F(JourneyE2eTest, PaidSponsoredRefundedAndPaidOut) {
  // Ben, an approved bike mechanic at 150 a minute (at least 5), online and
  // heartbeating for the whole journey.
  const std::string bikes = platform_->NewCategory();
  const Account ben = platform_->OnlineExpert(bikes, 150);
  std::atomic<bool> journey_over{false};
  std::thread heartbeats([&] {
    while (!journey_over.load()) {
      platform_->Heartbeat(Fresh(ben), matching::v1::PRESENCE_STATUS_AVAILABLE).IgnoreError();
      absl::SleepFor(absl::Seconds(2));
    }
  });

  // Anna asks for help now and is matched with Ben; 12 minutes billed.
  const Account anna = platform_->NewAccount();
  const matching::v1::Match first =
      platform_->MatchWith(Fresh(anna), Fresh(ben), Platform::HelpRequestFor(bikes, 30));
  EXPECT_EQ(first.max_amount().amount_minor(), 30 * 150) << "held: the maximum of the request";
  sessions::v1::Session call = Call(anna, ben, first.match_id(), absl::Milliseconds(11'500));
  EXPECT_EQ(call.billing().billed_minutes(), 12) << call.ShortDebugString();
  EXPECT_EQ(call.billing().amount().amount_minor(), 1800);
  payments::v1::GetBalanceResponse anna_paid = BalanceUntil(anna, [](const auto& b) {
    return b.person().spent().amount_minor() == 1800;
  });
  EXPECT_EQ(anna_paid.person().spent().amount_minor(), 1800);
  // The split: fee 20% = 360, Ben's share 1440, the rest of the hold released.
  payments::v1::GetBalanceResponse ben_earned = BalanceUntil(ben, [](const auto& b) {
    return b.expert().pending().amount_minor() == 1440;
  });
  EXPECT_EQ(ben_earned.expert().pending().amount_minor(), 1440);

  // Anna's review moves Ben's rating in search.
  sessions::v1::SubmitReviewRequest review;
  review.set_session_id(first.match_id());
  review.set_stars(5);
  review.set_text("Gears shift like new.");
  sessions::v1::SubmitReviewResponse reviewed;
  ASSERT_TRUE(
      Platform::Call(*sessions_, &SessionsStub::SubmitReview, Fresh(anna), review, &reviewed).ok());
  catalog::v1::ExpertHit hit = Eventually<catalog::v1::ExpertHit>(
      [&] {
        catalog::v1::SearchExpertsRequest search;
        search.set_category_id(bikes);
        catalog::v1::SearchExpertsResponse found;
        Platform::Call(*catalog_, &CatalogStub::SearchExperts, Fresh(anna), search, &found)
            .IgnoreError();
        return found.hits().empty() ? catalog::v1::ExpertHit() : found.hits(0);
      },
      [](const catalog::v1::ExpertHit& h) { return h.rating().review_count() == 1; });
  EXPECT_EQ(hit.expert_id(), ben.user_id);
  EXPECT_EQ(hit.rating().review_count(), 1);
  EXPECT_DOUBLE_EQ(hit.rating().average_stars(), 5);

  // A sponsor's program for bike repair, funded with 10,000.
  Account sponsor = platform_->NewAccount(identity::v1::ACCOUNT_TYPE_ORGANISATION);
  sponsor = platform_->LoginWithRole(sponsor.email, "sponsor");
  catalog::v1::CreateSponsorProgramRequest create;
  create.set_request_id(ids::NewUuidV7());
  catalog::v1::SponsorProgramTerms& terms = *create.mutable_terms();
  terms.set_name("Bike to work");
  terms.add_category_ids(bikes);
  terms.set_free_sessions_per_person(1);
  terms.set_max_minutes_per_session(30);
  *terms.mutable_active_from() = ToProtoTime(absl::Now() - absl::Hours(24));
  catalog::v1::CreateSponsorProgramResponse program;
  ASSERT_TRUE(Platform::Call(*catalog_, &CatalogStub::CreateSponsorProgram, sponsor, create,
                             &program)
                  .ok());
  payments::v1::FundSponsorBudgetRequest fund;
  fund.set_request_id(ids::NewUuidV7());
  fund.mutable_amount()->set_currency_code("EUR");
  fund.mutable_amount()->set_amount_minor(10000);
  payments::v1::FundSponsorBudgetResponse funded;
  ASSERT_TRUE(Platform::Call(*payments_, &PaymentsStub::FundSponsorBudget, Fresh(sponsor), fund,
                             &funded)
                  .ok());
  BalanceUntil(sponsor, [](const auto& b) { return b.sponsor().budget().amount_minor() == 10000; });

  // Cleo's session is on the sponsor: 2 minutes, billed the minimum 5 = 750.
  const Account cleo = platform_->NewAccount();
  matching::v1::RequestHelpRequest sponsored = Platform::HelpRequestFor(bikes, 30);
  sponsored.set_sponsor_program_id(program.program().program_id());
  const matching::v1::Match second = platform_->MatchWith(Fresh(cleo), Fresh(ben), sponsored);
  EXPECT_EQ(second.sponsor_program_id(), program.program().program_id());
  call = Call(cleo, ben, second.match_id(), absl::Seconds(2));
  EXPECT_EQ(call.billing().amount().amount_minor(), 750);
  payments::v1::GetBalanceResponse sponsor_spent = BalanceUntil(sponsor, [](const auto& b) {
    return b.sponsor().spent().amount_minor() == 750;
  });
  EXPECT_EQ(sponsor_spent.sponsor().spent().amount_minor(), 750);
  EXPECT_EQ(sponsor_spent.sponsor().budget().amount_minor(), 10000 - 750);
  EXPECT_EQ(sponsor_spent.sponsor().reserved().amount_minor(), 0);
  EXPECT_EQ(BalanceUntil(cleo, [](const auto&) { return true; }).person().spent().amount_minor(), 0)
      << "free for Cleo";

  // Dan's session is refunded under the guarantee: share and fee go back.
  const Account dan = platform_->NewAccount();
  const matching::v1::Match third =
      platform_->MatchWith(Fresh(dan), Fresh(ben), Platform::HelpRequestFor(bikes, 30));
  call = Call(dan, ben, third.match_id(), absl::Seconds(2));
  EXPECT_EQ(call.billing().amount().amount_minor(), 750);
  BalanceUntil(dan, [](const auto& b) { return b.person().spent().amount_minor() == 750; });
  sessions::v1::RequestRefundRequest refund;
  refund.set_session_id(third.match_id());
  refund.set_reason("The chain came off again on the way home");
  sessions::v1::RequestRefundResponse refunded;
  ASSERT_TRUE(
      Platform::Call(*sessions_, &SessionsStub::RequestRefund, Fresh(dan), refund, &refunded).ok());
  payments::v1::GetBalanceResponse dan_back = BalanceUntil(dan, [](const auto& b) {
    return b.person().refunded().amount_minor() == 750;
  });
  EXPECT_EQ(dan_back.person().refunded().amount_minor(), 750);
  int64_t reversed_share = 0;
  int64_t reversed_fee = 0;
  for (const kafka::Record& record : ::helpline::testing::ReadToEnd(
           es::ServiceTopics::For("payments", platform_->prefix()).events, platform_->partitions())) {
    payments::v1::PaymentsEvent event;
    ASSERT_TRUE(event.ParseFromString(record.value));
    if (event.session_refunded().session_id() != third.match_id()) continue;
    for (const payments::v1::Transfer& transfer : event.session_refunded().transfers()) {
      if (transfer.debit_account_id() == "expert:" + ben.user_id + ":payable") {
        reversed_share += transfer.amount();
      } else if (transfer.debit_account_id() == "platform:commission") {
        reversed_fee += transfer.amount();
      }
    }
  }
  EXPECT_EQ(reversed_share, 600);
  EXPECT_EQ(reversed_fee, 150);

  // After the refund window (10 minutes: 10 seconds here) Ben is paid out
  // 1440 + 600 and has nothing left available.
  BalanceUntil(ben, [](const auto& b) { return b.expert().available().amount_minor() == 2040; });
  payments::v1::RequestPayoutRequest payout;
  payout.set_request_id(ids::NewUuidV7());
  payments::v1::RequestPayoutResponse paying;
  ASSERT_TRUE(
      Platform::Call(*payments_, &PaymentsStub::RequestPayout, Fresh(ben), payout, &paying).ok());
  payments::v1::GetBalanceResponse ben_paid = BalanceUntil(ben, [](const auto& b) {
    return b.expert().paid_out().amount_minor() == 2040;
  });
  EXPECT_EQ(ben_paid.expert().paid_out().amount_minor(), 2040);
  EXPECT_EQ(ben_paid.expert().available().amount_minor(), 0);
  EXPECT_EQ(ben_paid.expert().pending().amount_minor(), 0);
  journey_over = true;
  heartbeats.join();

  payments::v1::ReconcileResponse reconciled = Eventually<payments::v1::ReconcileResponse>(
      [&] {
        payments::v1::ReconcileResponse response;
        EXPECT_TRUE(Platform::Call(*payments_, &PaymentsStub::Reconcile, platform_->Admin(),
                                   payments::v1::ReconcileRequest(), &response)
                        .ok());
        return response;
      },
      [](const payments::v1::ReconcileResponse& r) { return r.problems().empty(); });
  EXPECT_TRUE(reconciled.accounts_sum_to_zero());
  EXPECT_TRUE(reconciled.balances_match_replay());
  EXPECT_TRUE(reconciled.processor_matches_ledger());
  EXPECT_TRUE(reconciled.flags_hold());
  for (const std::string& problem : reconciled.problems()) ADD_FAILURE() << problem;
}

}  // namespace
}  // namespace helpline
