#include "services/payments/domain/payments_domain.h"

#include "gtest/gtest.h"
#include "services/payments/domain/ledger.h"
#include "services/payments/domain/reactions.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/testing/domain_test_log.h"

namespace helpline::payments {
namespace {

using Log = es::testing::DomainTestLog<PaymentsDomain>;

const std::string kLedger = LedgerId("EUR");

runtime::v1::Money Eur(int64_t minor) {
  runtime::v1::Money money;
  money.set_currency_code("EUR");
  money.set_amount_minor(minor);
  return money;
}

v1::PaymentsCommand Hold(const std::string& session, int64_t max, const std::string& program = "",
                         const std::string& person = "anna") {
  v1::PaymentsCommand command;
  v1::HoldSession& hold = *command.mutable_hold_session();
  hold.set_session_id(session);
  hold.set_person_id(person);
  hold.set_expert_id("ben");
  *hold.mutable_max_amount() = Eur(max);
  hold.set_commission_bps(2000);
  hold.set_sponsor_program_id(program);
  return command;
}

v1::PaymentsCommand Outcome(const std::string& intent, bool ok, const std::string& detail = "") {
  v1::PaymentsCommand command;
  command.mutable_record_processor_outcome()->set_intent_id(intent);
  command.mutable_record_processor_outcome()->set_outcome(ok ? v1::INTENT_OUTCOME_SUCCEEDED
                                                             : v1::INTENT_OUTCOME_DECLINED);
  command.mutable_record_processor_outcome()->set_detail(detail);
  return command;
}

v1::PaymentsCommand Capture(const std::string& session, int64_t amount) {
  v1::PaymentsCommand command;
  command.mutable_capture_session()->set_session_id(session);
  *command.mutable_capture_session()->mutable_amount() = Eur(amount);
  return command;
}

v1::PaymentsCommand Refund(const std::string& session) {
  v1::PaymentsCommand command;
  command.mutable_refund_session()->set_session_id(session);
  command.mutable_refund_session()->set_reason("still squeaks");
  return command;
}

v1::PaymentsCommand VoidIt(const std::string& session) {
  v1::PaymentsCommand command;
  command.mutable_void_session()->set_session_id(session);
  command.mutable_void_session()->set_reason("no-show");
  return command;
}

const v1::LedgerAccount& Account(Log& log, const std::string& id) {
  return log.StateOf(kLedger).ledger().accounts().at(id);
}

int64_t Sum(Log& log) {
  int64_t sum = 0;
  for (const auto& [id, account] : log.StateOf(kLedger).ledger().accounts()) {
    sum += Ledger::BalanceWithPending(account);
  }
  return sum;
}

// A paid session held for `max`: authorisation asked and approved.
void PaidHold(Log& log, const std::string& session, int64_t max) {
  auto asked = log.Send(kLedger, Hold(session, max));
  ASSERT_TRUE(asked.ok()) << asked.status();
  ASSERT_EQ((*asked)[0].processor_intent_recorded().kind(), v1::INTENT_KIND_AUTHORISE);
  auto approved = log.Send(kLedger, Outcome("auth:" + session, true));
  ASSERT_TRUE(approved.ok());
  ASSERT_TRUE(approved->back().has_hold_placed()) << approved->back().DebugString();
}

// A paid session's capture of `amount`, confirmed by the processor.
void CaptureConfirmed(Log& log, const std::string& session, int64_t amount) {
  auto asked = log.Send(kLedger, Capture(session, amount));
  ASSERT_TRUE(asked.ok()) << asked.status();
  ASSERT_TRUE((*asked)[0].has_capture_requested()) << (*asked)[0].DebugString();
  auto confirmed = log.Send(kLedger, Outcome("capture:" + session, true));
  ASSERT_TRUE(confirmed.ok()) << confirmed.status();
  ASSERT_TRUE((*confirmed)[1].has_session_captured()) << (*confirmed)[1].DebugString();
}

void Fund(Log& log, const std::string& sponsor, int64_t amount) {
  v1::PaymentsCommand fund;
  fund.mutable_fund_sponsor_budget()->set_funding_id("f-" + sponsor);
  fund.mutable_fund_sponsor_budget()->set_sponsor_id(sponsor);
  *fund.mutable_fund_sponsor_budget()->mutable_amount() = Eur(amount);
  ASSERT_TRUE(log.Send(kLedger, fund).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("fund:f-" + sponsor, true)).ok());
}

void Program(Log& log, const std::string& program, const std::string& sponsor, int free) {
  v1::PaymentsCommand command;
  command.mutable_record_sponsor_program()->set_program_id(program);
  command.mutable_record_sponsor_program()->set_sponsor_id(sponsor);
  command.mutable_record_sponsor_program()->set_free_sessions_per_person(free);
  ASSERT_TRUE(log.Send(kLedger, command).ok());
}

TEST(Payments, APaidSessionHoldsTheMaximumAndCapturesTheActualAmountWithAnExactSplit) {
  Log log;
  PaidHold(log, "s1", 3000);
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_pending(), 2400);
  EXPECT_EQ(Account(log, kCommissionAccount).credits_pending(), 600);
  auto asked = log.Send(kLedger, Capture("s1", 1800));
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_EQ((*asked)[0].capture_requested().amount().amount_minor(), 1800);
  EXPECT_EQ((*asked)[1].processor_intent_recorded().kind(), v1::INTENT_KIND_CAPTURE);
  EXPECT_EQ((*asked)[1].processor_intent_recorded().amount().amount_minor(), 1800);
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_posted(), 0)
      << "nothing is posted before the processor captured";
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_pending(), 2400) << "the hold stays";
  EXPECT_EQ(log.StateOf(kLedger).sessions().at("s1").status(),
            v1::SESSION_MONEY_STATUS_CAPTURING);
  auto captured = log.Send(kLedger, Outcome("capture:s1", true, "cap-1"));
  ASSERT_TRUE(captured.ok()) << captured.status();
  const v1::SessionCaptured& done = (*captured)[1].session_captured();
  EXPECT_EQ(done.fee_minor(), 360);
  EXPECT_EQ(done.expert_share_minor(), 1440);
  EXPECT_EQ(done.intent_id(), "capture:s1");
  const v1::LedgerAccount& payable = Account(log, ExpertPayable("ben"));
  EXPECT_EQ(payable.credits_posted(), 1440);
  EXPECT_EQ(payable.credits_pending(), 0) << "the rest of the hold is released";
  EXPECT_EQ(Account(log, kCommissionAccount).credits_posted(), 360);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, kCashAccount)), -1800);
  EXPECT_EQ(Sum(log), 0);
  auto again = log.Send(kLedger, Capture("s1", 1800));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "captured at most once";
}

TEST(Payments, ADeclinedCardFailsTheHoldAndDuplicateAnswersChangeNothing) {
  Log log;
  ASSERT_TRUE(log.Send(kLedger, Hold("s1", 3000)).ok());
  auto declined = log.Send(kLedger, Outcome("auth:s1", false, "insufficient funds"));
  ASSERT_TRUE(declined.ok());
  ASSERT_EQ(declined->size(), 2u);
  EXPECT_EQ((*declined)[1].hold_failed().session_id(), "s1");
  EXPECT_NE((*declined)[1].hold_failed().reason().find("insufficient funds"), std::string::npos);
  auto duplicate = log.Send(kLedger, Outcome("auth:s1", true));
  ASSERT_TRUE(duplicate.ok());
  EXPECT_TRUE(duplicate->empty()) << "a late or repeated answer is ignored";
  auto ended = log.Send(kLedger, Capture("s1", 100));
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_EQ(ended->size(), 1u);
  EXPECT_EQ((*ended)[0].session_unpaid().amount().amount_minor(), 100)
      << "a session that ran on a failed hold is recorded as unpaid";
  EXPECT_EQ(log.StateOf(kLedger).sessions().at("s1").unpaid_minor(), 100);
  EXPECT_EQ(Sum(log), 0);
}

TEST(Payments, ACaptureThatComesWhileAuthorisingIsDoneWhenTheAuthorisationIs) {
  Log log;
  ASSERT_TRUE(log.Send(kLedger, Hold("s1", 3000)).ok());
  auto queued = log.Send(kLedger, Capture("s1", 1000));
  ASSERT_TRUE(queued.ok());
  EXPECT_TRUE((*queued)[0].has_settlement_queued());
  auto approved = log.Send(kLedger, Outcome("auth:s1", true));
  ASSERT_TRUE(approved.ok());
  bool asked = false;
  for (const auto& event : *approved) asked = asked || event.has_capture_requested();
  EXPECT_TRUE(asked);
  ASSERT_TRUE(log.Send(kLedger, Outcome("capture:s1", true)).ok());
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_posted(), 800);
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_pending(), 0);
}

// Payments reads matching's and sessions' streams separately, so an end,
// a cancel or a refund can come before the match's hold.
TEST(Payments, SettlementsThatComeBeforeTheHoldWaitForIt) {
  Log log;
  for (const auto& early : {Capture("s1", 1000), Refund("s1")}) {
    auto queued = log.Send(kLedger, early);
    ASSERT_TRUE(queued.ok()) << queued.status();
    EXPECT_TRUE((*queued)[0].has_settlement_queued());
  }
  ASSERT_TRUE(log.Send(kLedger, Hold("s1", 3000)).ok());
  auto approved = log.Send(kLedger, Outcome("auth:s1", true));
  ASSERT_TRUE(approved.ok()) << approved.status();
  std::vector<v1::IntentKind> intents;
  for (const auto& event : *approved) {
    if (event.has_processor_intent_recorded()) {
      intents.push_back(event.processor_intent_recorded().kind());
    }
  }
  EXPECT_EQ(intents, (std::vector<v1::IntentKind>{v1::INTENT_KIND_CAPTURE}))
      << "the refund waits for the capture to go through";
  auto captured = log.Send(kLedger, Outcome("capture:s1", true));
  ASSERT_TRUE(captured.ok()) << captured.status();
  ASSERT_EQ(captured->size(), 4u);
  EXPECT_TRUE((*captured)[1].has_session_captured());
  EXPECT_TRUE((*captured)[2].has_refund_started());
  EXPECT_EQ((*captured)[3].processor_intent_recorded().kind(), v1::INTENT_KIND_REFUND);
  ASSERT_TRUE(log.Send(kLedger, Outcome("refund:s1", true)).ok());
  EXPECT_EQ(log.StateOf(kLedger).sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_REFUNDED);
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_posted(), 800);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 0);
  EXPECT_EQ(Ledger::BalanceWithPending(Account(log, kCommissionAccount)), 0);

  // A cancel before the hold: nothing is held, nothing asked of the card.
  ASSERT_TRUE(log.Send(kLedger, VoidIt("s2")).ok());
  auto held = log.Send(kLedger, Hold("s2", 3000));
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_TRUE((*held)[0].has_session_voided());
  EXPECT_EQ(log.Send(kLedger, Capture("s2", 100)).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // A sponsored session's end before its hold: held and captured at once.
  Program(log, "p1", "acme", 5);
  Fund(log, "acme", 5000);
  ASSERT_TRUE(log.Send(kLedger, Capture("s3", 200)).ok());
  auto sponsored = log.Send(kLedger, Hold("s3", 300, "p1"));
  ASSERT_TRUE(sponsored.ok()) << sponsored.status();
  ASSERT_EQ(sponsored->size(), 2u);
  EXPECT_TRUE((*sponsored)[1].has_session_captured());
  EXPECT_EQ(Account(log, SponsorBudget("acme")).debits_posted(), 200);
  EXPECT_EQ(Account(log, SponsorBudget("acme")).debits_pending(), 0);
  EXPECT_EQ(Sum(log), 0);
}

TEST(Payments, AVoidReleasesTheHoldAndLetsTheAuthorisationGo) {
  Log log;
  PaidHold(log, "s1", 3000);
  auto voided = log.Send(kLedger, VoidIt("s1"));
  ASSERT_TRUE(voided.ok()) << voided.status();
  EXPECT_TRUE((*voided)[0].has_session_voided());
  EXPECT_EQ((*voided)[1].processor_intent_recorded().kind(), v1::INTENT_KIND_VOID);
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_pending(), 0);
  EXPECT_EQ(Account(log, kCommissionAccount).credits_pending(), 0);
  EXPECT_EQ(log.Send(kLedger, Capture("s1", 100)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Sum(log), 0);
}

TEST(Payments, ARefundReversesShareAndFeeBackToTheCard) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);
  auto asked = log.Send(kLedger, Refund("s1"));
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_EQ((*asked)[0].refund_started().amount().amount_minor(), 1800);
  EXPECT_EQ((*asked)[1].processor_intent_recorded().kind(), v1::INTENT_KIND_REFUND);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 1440)
      << "nothing moves back before the processor refunded";
  auto refunded = log.Send(kLedger, Outcome("refund:s1", true));
  ASSERT_TRUE(refunded.ok()) << refunded.status();
  EXPECT_EQ((*refunded)[1].session_refunded().amount().amount_minor(), 1800);
  EXPECT_EQ((*refunded)[1].session_refunded().intent_id(), "refund:s1");
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 0);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, kCommissionAccount)), 0);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, kCashAccount)), 0);
  auto again = log.Send(kLedger, Refund("s1"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "refunded once";
  EXPECT_EQ(Sum(log), 0);
}

TEST(Payments, SponsoredHoldsNeverOverdrawTheBudgetAndQuotasHold) {
  Log log;
  Program(log, "p1", "acme", 100);
  Fund(log, "acme", 5000);
  EXPECT_EQ(Account(log, SponsorBudget("acme")).credits_posted(), 5000);
  int placed = 0;
  int failed = 0;
  for (int i = 0; i < 50; ++i) {
    auto held = log.Send(kLedger, Hold("s" + std::to_string(i), 300, "p1", "p" + std::to_string(i)));
    ASSERT_TRUE(held.ok()) << held.status();
    placed += (*held)[0].has_hold_placed();
    failed += (*held)[0].has_hold_failed();
  }
  EXPECT_EQ(placed, 16);
  EXPECT_EQ(failed, 34);
  EXPECT_GE(Ledger::BalanceWithPending(Account(log, SponsorBudget("acme"))), 0);
  // A sponsored capture takes from the budget, a refund gives it back.
  ASSERT_TRUE(log.Send(kLedger, Capture("s0", 200)).ok());
  EXPECT_EQ(Account(log, SponsorBudget("acme")).debits_posted(), 200);
  ASSERT_TRUE(log.Send(kLedger, Refund("s0")).ok());
  EXPECT_EQ(Ledger::PostedBalance(Account(log, SponsorBudget("acme"))), 5000);
  EXPECT_EQ(Sum(log), 0);

  Program(log, "p2", "acme", 1);
  auto first = log.Send(kLedger, Hold("q1", 100, "p2", "zoe"));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE((*first)[0].has_hold_placed());
  auto second = log.Send(kLedger, Hold("q2", 100, "p2", "zoe"));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*second)[0].has_hold_failed());
  EXPECT_NE((*second)[0].hold_failed().reason().find("free sessions"), std::string::npos);
}

TEST(Payments, BadCommandsNameTheField) {
  Log log;
  v1::PaymentsCommand dollars = Hold("s1", 100);
  dollars.mutable_hold_session()->mutable_max_amount()->set_currency_code("USD");
  EXPECT_EQ(log.Send(kLedger, dollars).status().code(), absl::StatusCode::kInvalidArgument);
  v1::PaymentsCommand bps = Hold("s1", 100);
  bps.mutable_hold_session()->set_commission_bps(20000);
  EXPECT_EQ(log.Send(kLedger, bps).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log.Send("not-a-ledger", Hold("s1", 100)).status().code(),
            absl::StatusCode::kInvalidArgument);
  PaidHold(log, "s2", 1000);
  EXPECT_EQ(log.Send(kLedger, Capture("s2", 1001)).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "never more than the hold";
}

v1::PaymentsCommand Payout(const std::string& id, int64_t minimum) {
  v1::PaymentsCommand command;
  command.mutable_request_payout()->set_payout_id(id);
  command.mutable_request_payout()->set_expert_id("ben");
  command.mutable_request_payout()->set_minimum_minor(minimum);
  *command.mutable_request_payout()->mutable_refund_window() = ToProtoDuration(absl::Hours(72));
  return command;
}

TEST(Payouts, EarningsArePaidOutAfterTheRefundWindowOnceAndADeclineKeepsThem) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);
  log.now += absl::Hours(1);
  EXPECT_EQ(log.Send(kLedger, Payout("p1", 1000)).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "inside the refund window";
  log.now += absl::Hours(72);
  EXPECT_EQ(log.Send(kLedger, Payout("p1", 2000)).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "below the minimum";
  auto started = log.Send(kLedger, Payout("p1", 1000));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ((*started)[0].payout_started().amount().amount_minor(), 1440);
  EXPECT_EQ((*started)[1].processor_intent_recorded().kind(), v1::INTENT_KIND_PAYOUT);
  EXPECT_EQ(Account(log, ExpertPayable("ben")).debits_pending(), 1440);
  EXPECT_EQ(log.Send(kLedger, Payout("p2", 1)).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "nothing left to pay out";
  // The processor refuses: the money stays and can be asked for again.
  ASSERT_TRUE(log.Send(kLedger, Outcome("payout:p1", false, "account closed")).ok());
  EXPECT_EQ(Account(log, ExpertPayable("ben")).debits_pending(), 0);
  ASSERT_TRUE(log.Send(kLedger, Payout("p3", 1000)).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("payout:p3", true)).ok());
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 0);
  EXPECT_EQ(log.StateOf(kLedger).paid_out().at("ben"), 1440);
  EXPECT_EQ(AvailableEarnings(log.StateOf(kLedger), "ben", log.now, absl::Hours(72)), 0);
  EXPECT_EQ(Sum(log), 0);
}

TEST(Payouts, TheBatchPaysEveryExpertAboveTheMinimumOnce) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);
  v1::PaymentsCommand other = Hold("s2", 500);
  other.mutable_hold_session()->set_expert_id("cara");
  ASSERT_TRUE(log.Send(kLedger, other).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("auth:s2", true)).ok());
  CaptureConfirmed(log, "s2", 100);
  log.now += absl::Hours(73);
  v1::PaymentsCommand batch;
  batch.mutable_run_payout_batch()->set_batch_id("2027-01-04");
  batch.mutable_run_payout_batch()->set_minimum_minor(1000);
  *batch.mutable_run_payout_batch()->mutable_refund_window() = ToProtoDuration(absl::Hours(72));
  auto paid = log.Send(kLedger, batch);
  ASSERT_TRUE(paid.ok());
  ASSERT_EQ(paid->size(), 2u) << "Ben's payout and its intent; Cara's 80 is below the minimum";
  EXPECT_EQ((*paid)[0].payout_started().expert_id(), "ben");
  auto again = log.Send(kLedger, batch);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "a batch pays once";
}

TEST(Payouts, SettledSessionsLeaveTheStateAfterTheDedupeWindowAndTheirEarningsStay) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);
  PaidHold(log, "s2", 3000);
  ASSERT_TRUE(log.Send(kLedger, VoidIt("s2")).ok());
  PaidHold(log, "s3", 3000);  // still held: stays
  log.now += kDedupeWindow + absl::Hours(2);
  Program(log, "p1", "acme", 1);  // any event lets the ledger forget
  const v1::PaymentsState& state = log.StateOf(kLedger);
  EXPECT_FALSE(state.sessions().contains("s1"));
  EXPECT_FALSE(state.sessions().contains("s2"));
  EXPECT_TRUE(state.sessions().contains("s3"));
  EXPECT_EQ(AvailableEarnings(state, "ben", log.now, absl::Hours(72)), 1440)
      << "the captured share stays earned";
  v1::PaymentsCommand batch;
  batch.mutable_run_payout_batch()->set_batch_id("weekly");
  batch.mutable_run_payout_batch()->set_minimum_minor(1000);
  *batch.mutable_run_payout_batch()->mutable_refund_window() = ToProtoDuration(absl::Hours(72));
  auto paid = log.Send(kLedger, batch);
  ASSERT_TRUE(paid.ok()) << paid.status();
  ASSERT_FALSE(paid->empty());
  EXPECT_EQ((*paid)[0].payout_started().amount().amount_minor(), 1440);
  EXPECT_EQ(Sum(log), 0);
}

v1::PaymentsCommand Batch(const std::string& id) {
  v1::PaymentsCommand batch;
  batch.mutable_run_payout_batch()->set_batch_id(id);
  batch.mutable_run_payout_batch()->set_minimum_minor(1);
  *batch.mutable_run_payout_batch()->mutable_refund_window() = ToProtoDuration(absl::Hours(72));
  return batch;
}

// Finding 1: a real processor declines captures (an expired authorisation).
// The ledger posts nothing until it captured, so a declined capture pays the
// expert nothing and says what the person owes.
TEST(MoneyFollowsTheProcessor, ADeclinedCaptureReleasesTheHoldAndPaysTheExpertNothing) {
  Log log;
  PaidHold(log, "s1", 3000);
  ASSERT_TRUE(log.Send(kLedger, Capture("s1", 1800)).ok());
  auto declined = log.Send(kLedger, Outcome("capture:s1", false, "authorisation expired"));
  ASSERT_TRUE(declined.ok()) << declined.status();
  ASSERT_EQ(declined->size(), 3u);
  const v1::CaptureFailed& failed = (*declined)[1].capture_failed();
  EXPECT_EQ((*declined)[2].processor_intent_recorded().kind(), v1::INTENT_KIND_VOID)
      << "what the authorisation still holds on the card is let go";
  EXPECT_EQ(failed.amount().amount_minor(), 1800);
  EXPECT_NE(failed.reason().find("authorisation expired"), std::string::npos);
  const v1::SessionMoney& money = log.StateOf(kLedger).sessions().at("s1");
  EXPECT_EQ(money.status(), v1::SESSION_MONEY_STATUS_CAPTURE_FAILED);
  EXPECT_EQ(money.unpaid_minor(), 1800) << "what the person owes";
  const v1::LedgerAccount& payable = Account(log, ExpertPayable("ben"));
  EXPECT_EQ(payable.credits_posted(), 0);
  EXPECT_EQ(payable.credits_pending(), 0) << "the hold is released";
  EXPECT_EQ(Account(log, kCommissionAccount).credits_posted(), 0);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, kCashAccount)), 0);
  log.now += absl::Hours(73);
  EXPECT_EQ(AvailableEarnings(log.StateOf(kLedger), "ben", log.now, absl::Hours(72)), 0);
  auto batch = log.Send(kLedger, Batch("after-the-window"));
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->empty()) << "nothing to pay out for money never collected";
  auto refund = log.Send(kLedger, Refund("s1"));
  ASSERT_TRUE(refund.ok());
  EXPECT_TRUE(refund->empty()) << "nothing taken, nothing to give back";
  EXPECT_TRUE(log.Send(kLedger, Capture("s1", 1800))->empty()) << "not asked twice";
  EXPECT_EQ(Sum(log), 0);
}

// Finding 1: a declined refund leaves the money captured and the session
// REFUND_FAILED (not REFUNDED); an admin's retry asks again.
TEST(MoneyFollowsTheProcessor, ADeclinedRefundStaysVisibleUntilARetryGoesThrough) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);
  ASSERT_TRUE(log.Send(kLedger, Refund("s1")).ok());
  auto declined = log.Send(kLedger, Outcome("refund:s1", false, "card closed"));
  ASSERT_TRUE(declined.ok()) << declined.status();
  EXPECT_EQ((*declined)[1].refund_failed().attempt(), 1);
  EXPECT_EQ(log.StateOf(kLedger).sessions().at("s1").status(),
            v1::SESSION_MONEY_STATUS_REFUND_FAILED);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 1440)
      << "the money is where the capture put it";
  log.now += absl::Hours(73);
  EXPECT_EQ(AvailableEarnings(log.StateOf(kLedger), "ben", log.now, absl::Hours(72)), 0)
      << "a share the person is owed back is not paid out";
  EXPECT_TRUE(log.Send(kLedger, Refund("s1"))->empty()) << "the same request does nothing";
  v1::PaymentsCommand retry;
  retry.mutable_retry_refund()->set_session_id("s1");
  auto retried = log.Send(kLedger, retry);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ((*retried)[0].refund_started().attempt(), 2);
  EXPECT_EQ((*retried)[1].processor_intent_recorded().intent_id(), "refund:s1/2");
  EXPECT_EQ(log.Send(kLedger, retry).status().code(), absl::StatusCode::kFailedPrecondition)
      << "only a declined refund is retried";
  auto refunded = log.Send(kLedger, Outcome("refund:s1/2", true));
  ASSERT_TRUE(refunded.ok()) << refunded.status();
  EXPECT_EQ((*refunded)[1].session_refunded().intent_id(), "refund:s1/2");
  EXPECT_EQ(log.StateOf(kLedger).sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_REFUNDED);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 0);
  EXPECT_EQ(Sum(log), 0);
}

// Finding 2: the authorisation comes back declined after the session ended
// (its capture waited for the hold): the minutes are recorded as unpaid.
TEST(MoneyFollowsTheProcessor, AHoldDeclinedAfterTheSessionEndedRecordsItsMinutesAsUnpaid) {
  Log log;
  ASSERT_TRUE(log.Send(kLedger, Hold("s1", 3000)).ok());
  ASSERT_TRUE(log.Send(kLedger, Capture("s1", 900)).ok());
  auto declined = log.Send(kLedger, Outcome("auth:s1", false, "insufficient funds"));
  ASSERT_TRUE(declined.ok()) << declined.status();
  ASSERT_EQ(declined->size(), 3u);
  EXPECT_TRUE((*declined)[1].has_hold_failed());
  EXPECT_EQ((*declined)[2].session_unpaid().amount().amount_minor(), 900);
  EXPECT_EQ(log.StateOf(kLedger).sessions().at("s1").unpaid_minor(), 900);

  // A sponsor's budget that is short, found when the end came first.
  Program(log, "p1", "acme", 5);
  ASSERT_TRUE(log.Send(kLedger, Capture("s2", 200)).ok());
  auto short_budget = log.Send(kLedger, Hold("s2", 300, "p1"));
  ASSERT_TRUE(short_budget.ok()) << short_budget.status();
  ASSERT_EQ(short_budget->size(), 2u);
  EXPECT_TRUE((*short_budget)[0].has_hold_failed());
  EXPECT_EQ((*short_budget)[1].session_unpaid().amount().amount_minor(), 200);
  EXPECT_EQ(Sum(log), 0);
}

// Finding 3: a refund after the expert was paid out is not refused: what
// the payable lacks becomes what the expert owes, recovered from their
// next earnings before anything is available again.
TEST(MoneyFollowsTheProcessor, ARefundAfterThePayoutIsRecoveredFromTheNextEarnings) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);  // 1440 to Ben
  log.now += absl::Hours(73);
  ASSERT_TRUE(log.Send(kLedger, Payout("o1", 1)).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("payout:o1", true)).ok());
  ASSERT_TRUE(log.Send(kLedger, Refund("s1")).ok());
  auto refunded = log.Send(kLedger, Outcome("refund:s1", true));
  ASSERT_TRUE(refunded.ok()) << refunded.status();
  ASSERT_EQ(refunded->size(), 2u) << "refunded, not refused";
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 0);
  EXPECT_EQ(-Ledger::PostedBalance(Account(log, ExpertOwed("ben"))), 1440) << "Ben owes it";
  EXPECT_EQ(Ledger::PostedBalance(Account(log, kCashAccount)), 1440)
      << "1800 came in, 1800 went back to the person and 1440 to Ben";

  PaidHold(log, "s2", 3000);
  CaptureConfirmed(log, "s2", 1000);  // 800 to Ben: all of it recovers the debt
  EXPECT_EQ(-Ledger::PostedBalance(Account(log, ExpertOwed("ben"))), 640);
  PaidHold(log, "s3", 3000);
  CaptureConfirmed(log, "s3", 1000);  // 800 more: 640 recovered, 160 his
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertOwed("ben"))), 0);
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 160);
  log.now += absl::Hours(73);
  EXPECT_EQ(AvailableEarnings(log.StateOf(kLedger), "ben", log.now, absl::Hours(72)), 160);
  EXPECT_EQ(Sum(log), 0);

  // By configuration the platform absorbs it instead.
  Log absorbed;
  PaidHold(absorbed, "s1", 3000);
  CaptureConfirmed(absorbed, "s1", 1800);
  absorbed.now += absl::Hours(73);
  ASSERT_TRUE(absorbed.Send(kLedger, Payout("o1", 1)).ok());
  ASSERT_TRUE(absorbed.Send(kLedger, Outcome("payout:o1", true)).ok());
  v1::PaymentsCommand refund = Refund("s1");
  refund.mutable_refund_session()->set_platform_absorbs_shortfall(true);
  ASSERT_TRUE(absorbed.Send(kLedger, refund).ok());
  ASSERT_TRUE(absorbed.Send(kLedger, Outcome("refund:s1", true)).ok());
  EXPECT_EQ(-Ledger::PostedBalance(Account(absorbed, kRefundLossesAccount)), 1440);
  EXPECT_FALSE(absorbed.StateOf(kLedger).ledger().accounts().contains(ExpertOwed("ben")));
  PaidHold(absorbed, "s2", 3000);
  CaptureConfirmed(absorbed, "s2", 1000);
  absorbed.now += absl::Hours(73);
  EXPECT_EQ(AvailableEarnings(absorbed.StateOf(kLedger), "ben", absorbed.now, absl::Hours(72)),
            800)
      << "Ben keeps his next earnings";
  EXPECT_EQ(Sum(absorbed), 0);
}

// Finding 6: a reactor replaying matching's and sessions' events from the
// beginning, after payments forgot the settled sessions, moves no money.
TEST(MoneyFollowsTheProcessor, EventsOlderThanPaymentsRemembersAreRefusedNotActedOnTwice) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);
  const absl::Time matched_at = log.now;
  log.now += kDedupeWindow + absl::Hours(2);
  Program(log, "p1", "acme", 1);  // any event lets the ledger forget
  ASSERT_FALSE(log.StateOf(kLedger).sessions().contains("s1"));
  for (v1::PaymentsCommand replayed : {Hold("s1", 3000), Capture("s1", 1800), Refund("s1")}) {
    *replayed.mutable_meta()->mutable_source_occurred_at() = ToProtoTime(matched_at);
    EXPECT_EQ(log.Send(kLedger, replayed).status().code(), absl::StatusCode::kFailedPrecondition)
        << replayed.ShortDebugString();
  }
  EXPECT_TRUE(log.StateOf(kLedger).open_intents().empty()) << "nothing asked of the processor";
  // A recent event about a session payments does not know is acted on.
  v1::PaymentsCommand fresh = Hold("s9", 3000);
  *fresh.mutable_meta()->mutable_source_occurred_at() = ToProtoTime(log.now - absl::Minutes(5));
  ASSERT_TRUE(log.Send(kLedger, fresh).ok());
}

// Finding 6: a funding or a payout retried after the dedupe window (its
// command id forgotten) is not executed again.
TEST(MoneyFollowsTheProcessor, FundingsAndPayoutsAreNeverExecutedTwice) {
  Log log;
  Fund(log, "acme", 5000);
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1800);
  log.now += absl::Hours(73);
  ASSERT_TRUE(log.Send(kLedger, Payout("o1", 1)).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("payout:o1", true)).ok());
  PaidHold(log, "s2", 3000);
  CaptureConfirmed(log, "s2", 1800);
  log.now += kDedupeWindow + absl::Hours(2);
  Program(log, "p1", "acme", 1);
  v1::PaymentsCommand fund;
  fund.mutable_fund_sponsor_budget()->set_funding_id("f-acme");
  fund.mutable_fund_sponsor_budget()->set_sponsor_id("acme");
  *fund.mutable_fund_sponsor_budget()->mutable_amount() = Eur(5000);
  auto again = log.Send(kLedger, fund);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->empty()) << "funded once";
  auto payout_again = log.Send(kLedger, Payout("o1", 1));
  ASSERT_TRUE(payout_again.ok()) << payout_again.status();
  EXPECT_TRUE(payout_again->empty()) << "the same payout is not started twice";
  EXPECT_EQ(Ledger::PostedBalance(Account(log, SponsorBudget("acme"))), 5000);
}

// Review: a refund that lands while the expert's payout is on its way
// takes what the payout holds as owed; the payout's outcome settles it.
TEST(MoneyFollowsTheProcessor, ARefundWhileThePayoutIsOnItsWayIsSettledByThePayoutsOutcome) {
  for (bool absorb : {false, true}) {
    for (bool payout_paid : {false, true}) {
      SCOPED_TRACE(absl::StrCat("absorb ", absorb, ", payout paid ", payout_paid));
      Log log;
      PaidHold(log, "s1", 3000);
      CaptureConfirmed(log, "s1", 1800);  // 1440 to Ben
      log.now += absl::Hours(73);
      ASSERT_TRUE(log.Send(kLedger, Payout("o1", 1)).ok());  // 1440 on its way
      v1::PaymentsCommand refund = Refund("s1");
      refund.mutable_refund_session()->set_platform_absorbs_shortfall(absorb);
      ASSERT_TRUE(log.Send(kLedger, refund).ok());
      ASSERT_TRUE(log.Send(kLedger, Outcome("refund:s1", true)).ok());
      EXPECT_EQ(-Ledger::PostedBalance(Account(log, ExpertOwed("ben"))), 1440)
          << "owed while the payout is on its way";
      ASSERT_TRUE(log.Send(kLedger, Outcome("payout:o1", payout_paid, "account closed")).ok());
      const int64_t owed = -Ledger::PostedBalance(Account(log, ExpertOwed("ben")));
      const int64_t losses =
          log.StateOf(kLedger).ledger().accounts().contains(kRefundLossesAccount)
              ? -Ledger::PostedBalance(Account(log, kRefundLossesAccount))
              : 0;
      EXPECT_EQ(losses, 0) << "what was on its way is never the platform's loss";
      if (!payout_paid) {
        EXPECT_EQ(owed, 0) << "the money came back and settled the debt";
        EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 0);
      } else {
        EXPECT_EQ(owed, 1440) << "Ben was paid for a session the person got back";
      }
      PaidHold(log, "s2", 3000);
      CaptureConfirmed(log, "s2", 1000);  // 800 more
      log.now += absl::Hours(73);
      const int64_t available =
          AvailableEarnings(log.StateOf(kLedger), "ben", log.now, absl::Hours(72));
      EXPECT_EQ(available, payout_paid ? 0 : 800)
          << "Ben is paid for s2 once, and never twice for the refunded s1";
      EXPECT_EQ(Sum(log), 0);
    }
  }
}

// Review: two refunds while one payout is on its way claim it once; the
// rest was paid out before and, where the platform absorbs such refunds,
// is its loss.
TEST(MoneyFollowsTheProcessor, TwoRefundsWhileOnePayoutIsOnItsWayClaimItOnce) {
  Log log;
  PaidHold(log, "s1", 3000);
  CaptureConfirmed(log, "s1", 1000);  // 800 to Ben
  log.now += absl::Hours(73);
  ASSERT_TRUE(log.Send(kLedger, Payout("o1", 1)).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("payout:o1", true)).ok());  // s1's 800 paid out
  PaidHold(log, "s2", 3000);
  CaptureConfirmed(log, "s2", 1000);  // 800 more
  log.now += absl::Hours(73);
  ASSERT_TRUE(log.Send(kLedger, Payout("o2", 1)).ok());  // s2's 800 on its way
  for (const char* session : {"s1", "s2"}) {
    v1::PaymentsCommand refund = Refund(session);
    refund.mutable_refund_session()->set_platform_absorbs_shortfall(true);
    ASSERT_TRUE(log.Send(kLedger, refund).ok());
    ASSERT_TRUE(log.Send(kLedger, Outcome(absl::StrCat("refund:", session), true)).ok());
  }
  EXPECT_EQ(-Ledger::PostedBalance(Account(log, ExpertOwed("ben"))), 800)
      << "o2 is claimed once";
  EXPECT_EQ(-Ledger::PostedBalance(Account(log, kRefundLossesAccount)), 800)
      << "what o1 paid out before is the platform's";
  ASSERT_TRUE(log.Send(kLedger, Outcome("payout:o2", false, "account closed")).ok());
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertOwed("ben"))), 0) << "o2's money came back";
  EXPECT_EQ(Ledger::PostedBalance(Account(log, ExpertPayable("ben"))), 0);
  EXPECT_EQ(AvailableEarnings(log.StateOf(kLedger), "ben", log.now, absl::Hours(72)), 0);
  EXPECT_TRUE(log.StateOf(kLedger).owed_against_payouts().empty());
  EXPECT_EQ(Sum(log), 0);
}

// Review: captures and refunds the ledger posted when asked (before they
// waited for the processor) that the processor then declines are taken back.
TEST(MoneyFollowsTheProcessor, DeclinesOfWhatTheLedgerPostedBeforeAreTakenBack) {
  // A history as the earlier code wrote it: posted, its intent still open.
  auto earlier = [](const std::vector<std::string>& skip) {
    Log log;
    PaidHold(log, "s1", 3000);
    std::vector<v1::PaymentsEvent> all;
    auto keep = [&](absl::StatusOr<std::vector<v1::PaymentsEvent>> events) {
      EXPECT_TRUE(events.ok());
      all.insert(all.end(), events->begin(), events->end());
    };
    keep(log.Send(kLedger, Capture("s1", 1800)));
    keep(log.Send(kLedger, Outcome("capture:s1", true)));
    keep(log.Send(kLedger, Refund("s1")));
    keep(log.Send(kLedger, Outcome("refund:s1", true)));
    v1::PaymentsState state;
    Log held;
    PaidHold(held, "s1", 3000);
    state = held.StateOf(kLedger);
    for (const v1::PaymentsEvent& event : all) {
      bool skipped = false;
      for (const std::string& what : skip) {
        skipped = skipped || event.processor_outcome_recorded().intent_id() == what ||
                  (what == "RefundStarted" && event.has_refund_started()) ||
                  (what == "SessionRefunded" && event.has_session_refunded()) ||
                  (what == "refund" && (event.has_refund_started() || event.has_session_refunded() ||
                                        event.processor_intent_recorded().kind() ==
                                            v1::INTENT_KIND_REFUND));
      }
      if (!skipped) PaymentsDomain::Apply(state, event);
    }
    return state;
  };
  es::DecideContext context{absl::FromUnixSeconds(1'798'800'000), kLedger, 10, nullptr};
  v1::PaymentsState captured = earlier({"capture:s1", "refund"});
  ASSERT_EQ(captured.sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_CAPTURED);
  ASSERT_TRUE(captured.open_intents().contains("capture:s1"));
  auto declined = PaymentsDomain::Decide(captured, Outcome("capture:s1", false, "expired"), context);
  ASSERT_TRUE(declined.ok()) << declined.status();
  ASSERT_EQ(declined->size(), 3u);
  EXPECT_EQ((*declined)[2].processor_intent_recorded().kind(), v1::INTENT_KIND_VOID);
  ASSERT_TRUE((*declined)[1].has_capture_failed());
  for (const v1::PaymentsEvent& event : *declined) PaymentsDomain::Apply(captured, event);
  EXPECT_EQ(Ledger::PostedBalance(captured.ledger().accounts().at(ExpertPayable("ben"))), 0)
      << "the share the processor never took is not Ben's";
  EXPECT_EQ(Ledger::PostedBalance(captured.ledger().accounts().at(kCashAccount)), 0);
  EXPECT_EQ(AvailableEarnings(captured, "ben", context.now + absl::Hours(100), absl::Hours(72)), 0);

  v1::PaymentsState refunded = earlier({"refund:s1", "RefundStarted"});
  ASSERT_EQ(refunded.sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_REFUNDED);
  auto refused = PaymentsDomain::Decide(refunded, Outcome("refund:s1", false, "card closed"), context);
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_TRUE((*refused)[1].has_refund_failed());
  for (const v1::PaymentsEvent& event : *refused) PaymentsDomain::Apply(refunded, event);
  EXPECT_EQ(refunded.sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_REFUND_FAILED);
  EXPECT_EQ(Ledger::PostedBalance(refunded.ledger().accounts().at(ExpertPayable("ben"))), 1440)
      << "the money is where the capture put it again";
  v1::PaymentsCommand retry;
  retry.mutable_retry_refund()->set_session_id("s1");
  auto retried = PaymentsDomain::Decide(refunded, retry, context);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ((*retried)[1].processor_intent_recorded().intent_id(), "refund:s1/2");
  for (const v1::PaymentsEvent& event : *retried) PaymentsDomain::Apply(refunded, event);
  auto posted = PaymentsDomain::Decide(refunded, Outcome("refund:s1/2", true), context);
  ASSERT_TRUE(posted.ok()) << "the retry posts under ids of its own: " << posted.status();
  ASSERT_TRUE((*posted)[1].has_session_refunded());

  // Declined captures of sessions the earlier code posted and then refunded
  // (or began to): taken back; the person owes nothing, having asked back.
  for (const char* after : {"refunding", "refunded"}) {
    SCOPED_TRACE(after);
    v1::PaymentsState state = std::string(after) == "refunded"
                                  ? earlier({"capture:s1", "refund:s1", "RefundStarted"})
                                  : earlier({"capture:s1", "refund:s1", "SessionRefunded"});
    if (std::string(after) == "refunding") {
      ASSERT_EQ(state.sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_REFUNDING);
    } else {
      ASSERT_EQ(state.sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_REFUNDED);
    }
    auto taken_back = PaymentsDomain::Decide(state, Outcome("capture:s1", false, "expired"), context);
    ASSERT_TRUE(taken_back.ok()) << taken_back.status();
    ASSERT_TRUE((*taken_back)[1].has_capture_failed());
    EXPECT_EQ((*taken_back)[1].capture_failed().amount().amount_minor(), 0);
    for (const v1::PaymentsEvent& event : *taken_back) PaymentsDomain::Apply(state, event);
    EXPECT_EQ(state.sessions().at("s1").status(), v1::SESSION_MONEY_STATUS_CAPTURE_FAILED);
    EXPECT_EQ(Ledger::PostedBalance(state.ledger().accounts().at(ExpertPayable("ben"))), 0);
    EXPECT_EQ(Ledger::PostedBalance(state.ledger().accounts().at(kCashAccount)), 0);
    auto refund_declined =
        PaymentsDomain::Decide(state, Outcome("refund:s1", false, "more than captured"), context);
    ASSERT_TRUE(refund_declined.ok());
    EXPECT_EQ(refund_declined->size(), 1u) << "only recorded";
  }
}

// Review: a refund that waited while the session was HELD is done when a
// capture that posts at once (sponsored) comes.
TEST(MoneyFollowsTheProcessor, ARefundQueuedWhileHeldFollowsACaptureThatPostsAtOnce) {
  Log log;
  Program(log, "p1", "acme", 5);
  Fund(log, "acme", 5000);
  ASSERT_TRUE(log.Send(kLedger, Hold("s1", 300, "p1")).ok());
  auto queued = log.Send(kLedger, Refund("s1"));
  ASSERT_TRUE(queued.ok()) << queued.status();
  ASSERT_TRUE((*queued)[0].has_settlement_queued());
  auto captured = log.Send(kLedger, Capture("s1", 200));
  ASSERT_TRUE(captured.ok()) << captured.status();
  ASSERT_EQ(captured->size(), 2u);
  EXPECT_TRUE((*captured)[1].has_session_refunded());
  EXPECT_EQ(Ledger::PostedBalance(Account(log, SponsorBudget("acme"))), 5000);
  EXPECT_EQ(Sum(log), 0);
}

// Review: a refund for a session payments knows nothing of (its capture
// never came, or it was forgotten) is refused, visibly, not parked for ever.
TEST(MoneyFollowsTheProcessor, ARefundForASessionPaymentsDoesNotKnowIsRefused) {
  Log log;
  EXPECT_EQ(log.Send(kLedger, Refund("nobody-knows")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(log.StateOf(kLedger).sessions().contains("nobody-knows"));
}

matching::v1::MatchingEvent MatchMade(const std::string& category, const std::string& program) {
  matching::v1::MatchingEvent event;
  matching::v1::Match& match = *event.mutable_match_made()->mutable_match();
  match.set_match_id("s1");
  match.set_person_id("anna");
  match.set_expert_id("ben");
  match.mutable_price()->mutable_per_minute()->mutable_rate()->set_currency_code("EUR");
  match.mutable_price()->mutable_per_minute()->mutable_rate()->set_amount_minor(150);
  match.mutable_price()->mutable_per_minute()->set_minimum_minutes(5);
  match.set_max_minutes(20);
  *match.mutable_max_amount() = Eur(3000);
  match.set_category_id(category);
  match.set_sponsor_program_id(program);
  return event;
}

TEST(Reactions, AMatchHoldsWithTheCommissionOfItsCategoryOrProgram) {
  CommissionOptions options;
  options.category_bps["tutoring"] = 1500;
  options.program_bps["sponsor-program:p1"] = 1000;
  auto plain = PaymentsFromMatching(MatchMade("bike-repair", ""), options);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].meta().aggregate_id(), kLedger);
  EXPECT_EQ(plain[0].hold_session().commission_bps(), 2000);
  EXPECT_EQ(plain[0].hold_session().max_amount().amount_minor(), 3000);
  EXPECT_EQ(plain[0].hold_session().minimum_charge().amount_minor(), 750);
  EXPECT_EQ(PaymentsFromMatching(MatchMade("tutoring", ""), options)[0]
                .hold_session()
                .commission_bps(),
            1500);
  EXPECT_EQ(PaymentsFromMatching(MatchMade("tutoring", "sponsor-program:p1"), options)[0]
                .hold_session()
                .commission_bps(),
            1000);
}

TEST(Reactions, CommissionOverridesAreReadFromConfigText) {
  CommissionOptions options;
  ASSERT_TRUE(ParseCommissionOverrides(
                  "category:tutoring=1500, program:sponsor-program:p1=1000", options)
                  .ok());
  EXPECT_EQ(options.For("tutoring", ""), 1500);
  EXPECT_EQ(options.For("tutoring", "sponsor-program:p1"), 1000);
  EXPECT_EQ(options.For("cooking", ""), 2000);
  EXPECT_TRUE(ParseCommissionOverrides("", options).ok());
  EXPECT_FALSE(ParseCommissionOverrides("category:x=20001", options).ok());
  EXPECT_FALSE(ParseCommissionOverrides("shop:x=100", options).ok());
  EXPECT_FALSE(ParseCommissionOverrides("category:x", options).ok());
  EXPECT_FALSE(ParseCommissionOverrides("category:=5", options).ok());
}

TEST(Reactions, ALateCancellationTakesTheMinimumChargeAnInTimeOneVoids) {
  CommissionOptions options;
  Log log;
  std::vector<v1::PaymentsCommand> hold = PaymentsFromMatching(MatchMade("bike-repair", ""), options);
  ASSERT_TRUE(log.Send(kLedger, hold[0]).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("auth:s1", true)).ok());
  matching::v1::MatchingEvent cancelled;
  cancelled.mutable_booking_cancelled()->set_booking_id("s1");
  cancelled.mutable_booking_cancelled()->set_cancelled_by("person");
  cancelled.mutable_booking_cancelled()->set_late(true);
  std::vector<v1::PaymentsCommand> charge = PaymentsFromMatching(cancelled, options);
  ASSERT_TRUE(charge[0].has_charge_late_cancellation());
  auto asked = log.Send(kLedger, charge[0]);
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_EQ((*asked)[0].capture_requested().amount().amount_minor(), 750);
  auto charged = log.Send(kLedger, Outcome("capture:s1", true));
  ASSERT_TRUE(charged.ok()) << charged.status();
  EXPECT_EQ((*charged)[1].session_captured().amount().amount_minor(), 750);
  EXPECT_EQ((*charged)[1].session_captured().fee_minor(), 150);
  EXPECT_EQ(Account(log, ExpertPayable("ben")).credits_pending(), 0) << "the rest released";

  cancelled.mutable_booking_cancelled()->set_late(false);
  EXPECT_TRUE(PaymentsFromMatching(cancelled, options)[0].has_void_session());
}

// The booking's cancellation also cancels its session; when sessions' event
// reaches payments before matching's, the hold must still be there for the
// late fee: a booked session's cancellation voids nothing by itself.
TEST(Reactions, ALateFeeIsChargedWhicheverCancellationArrivesFirst) {
  CommissionOptions options;
  Log log;
  ASSERT_TRUE(log.Send(kLedger, PaymentsFromMatching(MatchMade("bike-repair", ""), options)[0]).ok());
  ASSERT_TRUE(log.Send(kLedger, Outcome("auth:s1", true)).ok());
  sessions::v1::SessionsEvent session_cancelled;
  session_cancelled.mutable_meta()->set_aggregate_id("s1");
  session_cancelled.mutable_session_cancelled()->set_reason("the booking was cancelled by the person");
  session_cancelled.mutable_session_cancelled()->set_kind(sessions::v1::SESSION_KIND_BOOKED);
  for (const v1::PaymentsCommand& command : PaymentsFromSessions(session_cancelled, options)) {
    ASSERT_TRUE(log.Send(kLedger, command).ok());
  }
  matching::v1::MatchingEvent booking_cancelled;
  booking_cancelled.mutable_booking_cancelled()->set_booking_id("s1");
  booking_cancelled.mutable_booking_cancelled()->set_cancelled_by("person");
  booking_cancelled.mutable_booking_cancelled()->set_late(true);
  auto asked = log.Send(kLedger, PaymentsFromMatching(booking_cancelled, options)[0]);
  ASSERT_TRUE(asked.ok()) << asked.status();
  ASSERT_FALSE(asked->empty()) << "the hold was voided before the late fee";
  EXPECT_EQ((*asked)[0].capture_requested().amount().amount_minor(), 750);

  // A session cancelled before sessions said its kind (older events) is voided.
  session_cancelled.mutable_session_cancelled()->clear_kind();
  EXPECT_TRUE(PaymentsFromSessions(session_cancelled, options)[0].has_void_session());
}

TEST(Reactions, SessionsEndsCaptureNoShowsVoidAndRefundsRefund) {
  CommissionOptions options;
  sessions::v1::SessionsEvent ended;
  ended.mutable_meta()->set_aggregate_id("s1");
  *ended.mutable_session_ended()->mutable_billing()->mutable_amount() = Eur(1800);
  auto capture = PaymentsFromSessions(ended, options);
  ASSERT_EQ(capture.size(), 1u);
  EXPECT_EQ(capture[0].capture_session().session_id(), "s1");
  EXPECT_EQ(capture[0].capture_session().amount().amount_minor(), 1800);
  sessions::v1::SessionsEvent no_show;
  no_show.mutable_meta()->set_aggregate_id("s1");
  no_show.mutable_session_no_show();
  EXPECT_TRUE(PaymentsFromSessions(no_show, options)[0].has_void_session());
  sessions::v1::SessionsEvent refund;
  refund.mutable_meta()->set_aggregate_id("s1");
  refund.mutable_refund_requested()->set_reason("squeaks");
  EXPECT_EQ(PaymentsFromSessions(refund, options)[0].refund_session().reason(), "squeaks");
  sessions::v1::SessionsEvent review;
  review.mutable_review_submitted();
  EXPECT_TRUE(PaymentsFromSessions(review, options).empty());
}

TEST(Reactions, SponsorProgramsKeepTheirSponsorAcrossUpdates) {
  CommissionOptions options;
  Log log;
  catalog::v1::CatalogEvent created;
  created.mutable_meta()->set_aggregate_id("sponsor-program:p1");
  created.mutable_sponsor_program_created()->set_sponsor_id("acme");
  created.mutable_sponsor_program_created()->mutable_terms()->set_free_sessions_per_person(2);
  ASSERT_TRUE(log.Send(kLedger, PaymentsFromCatalog(created, options)[0]).ok());
  catalog::v1::CatalogEvent updated;
  updated.mutable_meta()->set_aggregate_id("sponsor-program:p1");
  updated.mutable_sponsor_program_updated()->mutable_terms()->set_free_sessions_per_person(5);
  ASSERT_TRUE(log.Send(kLedger, PaymentsFromCatalog(updated, options)[0]).ok());
  const v1::SponsorProgramRecorded& program =
      log.StateOf(kLedger).programs().at("sponsor-program:p1");
  EXPECT_EQ(program.sponsor_id(), "acme");
  EXPECT_EQ(program.free_sessions_per_person(), 5);
}

}  // namespace
}  // namespace helpline::payments
