#include "services/payments/domain/read_model.h"

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/testing/domain_test_log.h"

namespace helpline::payments {
namespace {

using Log = es::testing::DomainTestLog<PaymentsDomain>;
const std::string kLedger = LedgerId("EUR");

class PaymentsReadModelTest : public ::testing::Test {
 protected:
  PaymentsReadModelTest() : model_("EUR", absl::Hours(72)), log_(&model_) {}

  void Send(v1::PaymentsCommand command) {
    auto events = log_.Send(kLedger, std::move(command));
    ASSERT_TRUE(events.ok()) << events.status();
  }

  void Session(const std::string& session, int64_t max, int64_t captured,
               const std::string& program = "") {
    v1::PaymentsCommand hold;
    v1::HoldSession& h = *hold.mutable_hold_session();
    h.set_session_id(session);
    h.set_person_id("anna");
    h.set_expert_id("ben");
    h.mutable_max_amount()->set_currency_code("EUR");
    h.mutable_max_amount()->set_amount_minor(max);
    h.set_commission_bps(2000);
    h.set_sponsor_program_id(program);
    Send(hold);
    if (program.empty()) Outcome("auth:" + session);
    v1::PaymentsCommand capture;
    capture.mutable_capture_session()->set_session_id(session);
    capture.mutable_capture_session()->mutable_amount()->set_currency_code("EUR");
    capture.mutable_capture_session()->mutable_amount()->set_amount_minor(captured);
    Send(capture);
    if (program.empty() && captured > 0) Outcome("capture:" + session);
  }

  void Outcome(const std::string& intent) {
    v1::PaymentsCommand outcome;
    outcome.mutable_record_processor_outcome()->set_intent_id(intent);
    outcome.mutable_record_processor_outcome()->set_outcome(v1::INTENT_OUTCOME_SUCCEEDED);
    Send(outcome);
  }

  PaymentsReadModel model_;
  Log log_;
};

TEST_F(PaymentsReadModelTest, BalancesForTheExpertThePersonAndTheSponsor) {
  Session("s1", 3000, 1800);
  v1::GetBalanceResponse expert = model_.BalanceOf("ben", log_.now);
  EXPECT_EQ(expert.expert().pending().amount_minor(), 1440) << "inside the refund window";
  EXPECT_EQ(expert.expert().available().amount_minor(), 0);
  EXPECT_EQ(model_.BalanceOf("ben", log_.now + absl::Hours(73)).expert().available().amount_minor(),
            1440);
  EXPECT_EQ(model_.BalanceOf("anna", log_.now).person().spent().amount_minor(), 1800);

  v1::PaymentsCommand refund;
  refund.mutable_refund_session()->set_session_id("s1");
  Send(refund);
  EXPECT_EQ(model_.BalanceOf("anna", log_.now).person().refunded().amount_minor(), 0)
      << "not before the processor gave the money back";
  Outcome("refund:s1");
  EXPECT_EQ(model_.BalanceOf("anna", log_.now).person().refunded().amount_minor(), 1800);
  EXPECT_EQ(model_.BalanceOf("ben", log_.now + absl::Hours(73)).expert().available().amount_minor(),
            0);

  v1::PaymentsCommand program;
  program.mutable_record_sponsor_program()->set_program_id("p1");
  program.mutable_record_sponsor_program()->set_sponsor_id("acme");
  program.mutable_record_sponsor_program()->set_free_sessions_per_person(5);
  Send(program);
  v1::PaymentsCommand fund;
  fund.mutable_fund_sponsor_budget()->set_funding_id("f1");
  fund.mutable_fund_sponsor_budget()->set_sponsor_id("acme");
  fund.mutable_fund_sponsor_budget()->mutable_amount()->set_currency_code("EUR");
  fund.mutable_fund_sponsor_budget()->mutable_amount()->set_amount_minor(10000);
  Send(fund);
  Outcome("fund:f1");
  Session("s2", 3000, 1000, "p1");
  v1::GetBalanceResponse sponsor = model_.BalanceOf("acme", log_.now);
  EXPECT_EQ(sponsor.sponsor().budget().amount_minor(), 9000);
  EXPECT_EQ(sponsor.sponsor().spent().amount_minor(), 1000);
  EXPECT_EQ(sponsor.sponsor().reserved().amount_minor(), 0);
  EXPECT_EQ(model_.BalanceOf("anna", log_.now).person().spent().amount_minor(), 1800)
      << "a sponsored session costs the person nothing";
}

TEST_F(PaymentsReadModelTest, WhatAPersonOwesAndWhatNeedsAPersonAreShown) {
  // A session ran on a sponsor program payments does not know: unpaid.
  v1::PaymentsCommand hold;
  v1::HoldSession& h = *hold.mutable_hold_session();
  h.set_session_id("s1");
  h.set_person_id("anna");
  h.set_expert_id("ben");
  h.mutable_max_amount()->set_currency_code("EUR");
  h.mutable_max_amount()->set_amount_minor(3000);
  h.set_sponsor_program_id("unknown-program");
  Send(hold);
  v1::PaymentsCommand capture;
  capture.mutable_capture_session()->set_session_id("s1");
  capture.mutable_capture_session()->mutable_amount()->set_currency_code("EUR");
  capture.mutable_capture_session()->mutable_amount()->set_amount_minor(900);
  Send(capture);
  EXPECT_EQ(model_.BalanceOf("anna", log_.now).person().owed().amount_minor(), 900);
  std::vector<v1::MoneyAttention> attention = model_.Attention();
  ASSERT_EQ(attention.size(), 1u);
  EXPECT_EQ(attention[0].subject(), "session:s1");
  EXPECT_EQ(attention[0].state(), "UNPAID");
  EXPECT_EQ(model_.Figures().amount_minor.at("UNPAID"), 900);
  EXPECT_EQ(model_.Figures().count.at("CAPTURE_FAILED"), 0);
}

TEST_F(PaymentsReadModelTest, HistoryAndRecomputedBalancesAgreeWithTheLedger) {
  Session("s1", 3000, 1800);
  Session("s2", 2000, 0);
  log_.now += absl::Hours(73);
  v1::PaymentsCommand payout;
  payout.mutable_request_payout()->set_payout_id("o1");
  payout.mutable_request_payout()->set_expert_id("ben");
  payout.mutable_request_payout()->set_minimum_minor(1);
  *payout.mutable_request_payout()->mutable_refund_window() = ToProtoDuration(absl::Hours(72));
  Send(payout);
  Outcome("payout:o1");
  EXPECT_EQ(model_.BalanceOf("ben", log_.now).expert().paid_out().amount_minor(), 1440);
  auto [accounts, recomputed] = model_.AccountsAndRecomputed();
  for (const auto& [id, account] : accounts) {
    v1::LedgerAccount expected = account;
    expected.clear_account_id();
    expected.clear_flags();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(recomputed[id], expected))
        << id << ": " << recomputed[id].ShortDebugString() << " vs " << expected.ShortDebugString();
  }
  std::vector<v1::Transfer> ben = model_.TransfersOf("ben", std::nullopt, 100);
  ASSERT_FALSE(ben.empty());
  for (size_t i = 1; i < ben.size(); ++i) {
    EXPECT_GE(FromProtoTime(ben[i - 1].timestamp()), FromProtoTime(ben[i].timestamp()));
  }
  EXPECT_TRUE(model_.TransfersOf("nobody", std::nullopt, 100).empty());
  EXPECT_EQ(model_.MovedAtProcessorCount(), 2u)
      << "the capture of s1 and the payout (s2 took nothing)";
  EXPECT_EQ(model_.MovedAtProcessor("capture:s1").amount, 1800);
  EXPECT_EQ(model_.MovedAtProcessor("payout:o1").amount, 1440);
  EXPECT_EQ(model_.OpenIntents().size(), 1u) << "the void of s2, not yet executed";
  bool payout_listed = false;
  for (const v1::Transfer& transfer : ben) {
    payout_listed = payout_listed || transfer.transfer_id() == "payout-post:o1";
  }
  EXPECT_TRUE(payout_listed) << "the payout is in the expert's history";
}

}  // namespace
}  // namespace helpline::payments
