#include "services/payments/intent_worker.h"

#include <cstdio>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/payments/domain/payments_domain.h"
#include "services/payments/sandbox/sandbox.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/testing/domain_test_log.h"
#include "services/runtime/server/testing/registry_values.h"
#include "tests/support/test_stack.h"

namespace helpline::payments {
namespace {

using Log = es::testing::DomainTestLog<PaymentsDomain>;
const std::string kLedger = LedgerId("EUR");

// The sandbox in process: a scripted delay longer than the caller's
// timeout is a timeout for the caller (the operation is done all the same).
class InProcessSandbox : public PaymentProcessor {
 public:
  explicit InProcessSandbox(SandboxProcessor& sandbox) : sandbox_(sandbox) {}
  absl::StatusOr<v1::ExecuteResponse> Execute(const v1::ExecuteRequest& request,
                                              absl::Duration timeout) override {
    absl::StatusOr<SandboxProcessor::Answer> answer = sandbox_.Execute(request, absl::Now());
    if (!answer.ok()) return answer.status();
    if (answer->delay > timeout) return absl::DeadlineExceededError("the processor is slow");
    return answer->response;
  }

 private:
  SandboxProcessor& sandbox_;
};

class IntentWorkerTest : public ::testing::Test {
 protected:
  IntentWorkerTest()
      : path_(::testing::TempDir() + ::helpline::testing::UniqueName("journal")),
        sandbox_(*SandboxProcessor::Open(path_)),
        processor_(*sandbox_),
        worker_({absl::Seconds(1), absl::Seconds(2)}, processor_,
                [this] {
                  std::vector<v1::ProcessorIntentRecorded> open;
                  for (const auto& [id, intent] : log_.StateOf(kLedger).open_intents()) {
                    open.push_back(intent);
                  }
                  return open;
                },
                [this](const v1::RecordProcessorOutcome& outcome) {
                  v1::PaymentsCommand command;
                  *command.mutable_record_processor_outcome() = outcome;
                  ++reports_;
                  return log_.Send(kLedger, command).status();
                },
                &metrics_) {}
  ~IntentWorkerTest() override { std::remove(path_.c_str()); }

  void Hold(const std::string& session, int64_t max) {
    v1::PaymentsCommand command;
    v1::HoldSession& hold = *command.mutable_hold_session();
    hold.set_session_id(session);
    hold.set_person_id("anna");
    hold.set_expert_id("ben");
    hold.mutable_max_amount()->set_currency_code("EUR");
    hold.mutable_max_amount()->set_amount_minor(max);
    hold.set_commission_bps(2000);
    ASSERT_TRUE(log_.Send(kLedger, command).ok());
  }

  void Capture(const std::string& session, int64_t amount) {
    v1::PaymentsCommand capture;
    capture.mutable_capture_session()->set_session_id(session);
    capture.mutable_capture_session()->mutable_amount()->set_currency_code("EUR");
    capture.mutable_capture_session()->mutable_amount()->set_amount_minor(amount);
    ASSERT_TRUE(log_.Send(kLedger, capture).ok());
  }

  // The processor's next answer to a call of `kind` comes after the
  // worker's timeout (the operation is done all the same).
  void AnswerSlowlyOnce(v1::IntentKind kind) {
    v1::ScriptRequest script;
    v1::ScriptRule& slow = *script.add_rules();
    slow.set_kind(kind);
    *slow.mutable_delay() = ToProtoDuration(absl::Seconds(5));
    slow.set_times(1);
    sandbox_->Script(script);
  }

  v1::SessionMoneyStatus Status(const std::string& session) {
    return log_.StateOf(kLedger).sessions().at(session).status();
  }

  int Journaled(v1::IntentKind kind) {
    int count = 0;
    for (const v1::JournalEntry& entry : sandbox_->Journal()) count += entry.kind() == kind;
    return count;
  }

  // A gauge's or counter's value; -1 if it has no such series.
  double Metric(const std::string& name, const prometheus::Labels& labels = {}) {
    return server::testing::ValueOf(registry_, name, labels).value_or(-1);
  }

  std::string path_;
  prometheus::Registry registry_;
  IntentMetrics metrics_{registry_};
  Log log_;
  std::unique_ptr<SandboxProcessor> sandbox_;
  InProcessSandbox processor_;
  IntentWorker worker_;
  int reports_ = 0;
};

TEST_F(IntentWorkerTest, AnAuthorisationAnsweredBecomesAHoldAndACaptureHappensOnce) {
  Hold("s1", 3000);
  EXPECT_EQ(worker_.RunOnce(log_.now), 1);
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_HELD);
  Capture("s1", 1800);
  EXPECT_EQ(worker_.RunOnce(log_.now), 1);
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Minutes(1)), 0) << "nothing open";
  EXPECT_EQ(Journaled(v1::INTENT_KIND_CAPTURE), 1);
  EXPECT_TRUE(log_.StateOf(kLedger).open_intents().empty());
}

TEST_F(IntentWorkerTest, ADeclinedCardFailsTheHold) {
  v1::ScriptRequest script;
  script.add_rules()->set_decline_reason("card declined");
  sandbox_->Script(script);
  Hold("s1", 3000);
  EXPECT_EQ(worker_.RunOnce(log_.now), 1);
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_FAILED);
}

TEST_F(IntentWorkerTest, ATimeoutIsRetriedWithTheSameKeyAndMovesMoneyOnce) {
  AnswerSlowlyOnce(v1::INTENT_KIND_AUTHORISE);
  Hold("s1", 3000);
  EXPECT_EQ(worker_.RunOnce(log_.now), 0) << "timed out";
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_AUTHORISING);
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Seconds(1)), 0) << "not before retry_after";
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Seconds(3)), 1);
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_HELD);
  EXPECT_EQ(Journaled(v1::INTENT_KIND_AUTHORISE), 1) << "the retry was answered from the journal";

  // A duplicate answer changes nothing.
  v1::PaymentsCommand duplicate;
  duplicate.mutable_record_processor_outcome()->set_intent_id("auth:s1");
  duplicate.mutable_record_processor_outcome()->set_outcome(v1::INTENT_OUTCOME_SUCCEEDED);
  auto events = log_.Send(kLedger, duplicate);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

TEST_F(IntentWorkerTest, ARefundGoesToTheProcessorOnlyAfterItsCapture) {
  AnswerSlowlyOnce(v1::INTENT_KIND_CAPTURE);
  Hold("s1", 3000);
  EXPECT_EQ(worker_.RunOnce(log_.now), 1);
  Capture("s1", 1800);
  v1::PaymentsCommand refund;
  refund.mutable_refund_session()->set_session_id("s1");
  ASSERT_TRUE(log_.Send(kLedger, refund).ok());
  EXPECT_EQ(worker_.RunOnce(log_.now), 0) << "the capture timed out; the refund waits for it";
  EXPECT_EQ(Journaled(v1::INTENT_KIND_REFUND), 0);
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_CAPTURING);
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Seconds(3)), 1) << "the capture";
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_REFUNDING)
      << "the refund is asked for once the capture went through";
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Seconds(3)), 1) << "then the refund";
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_REFUNDED);
  for (const v1::JournalEntry& entry : sandbox_->Journal()) {
    EXPECT_TRUE(entry.approved()) << entry.ShortDebugString();
  }
  EXPECT_EQ(Journaled(v1::INTENT_KIND_REFUND), 1);
  EXPECT_TRUE(log_.StateOf(kLedger).open_intents().empty());
}

TEST_F(IntentWorkerTest, TheOldestOpenIntentAgesUntilAnsweredAndCallsAreCountedByResult) {
  AnswerSlowlyOnce(v1::INTENT_KIND_AUTHORISE);
  Hold("s1", 3000);
  EXPECT_EQ(worker_.RunOnce(log_.now), 0) << "timed out";
  EXPECT_EQ(Metric("helpline_payments_open_intents"), 1);
  EXPECT_EQ(Metric("helpline_payments_processor_calls_total",
                   {{"kind", "authorise"}, {"result", "no_answer"}}),
            1);
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Seconds(3)), 1);
  EXPECT_EQ(Metric("helpline_payments_oldest_open_intent_age_seconds"), 3)
      << "open since the worker first saw it";
  EXPECT_EQ(Metric("helpline_payments_processor_calls_total",
                   {{"kind", "authorise"}, {"result", "approved"}}),
            1);
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Seconds(4)), 0);
  EXPECT_EQ(Metric("helpline_payments_open_intents"), 0);
  EXPECT_EQ(Metric("helpline_payments_oldest_open_intent_age_seconds"), 0);

  v1::ScriptRequest script;
  v1::ScriptRule& decline = *script.add_rules();
  decline.set_kind(v1::INTENT_KIND_CAPTURE);
  decline.set_decline_reason("authorisation expired");
  sandbox_->Script(script);
  EXPECT_EQ(Metric("helpline_payments_processor_calls_total",
                   {{"kind", "capture"}, {"result", "declined"}}),
            0)
      << "counted from zero, so the first decline is an increase";
  Capture("s1", 1800);
  EXPECT_EQ(worker_.RunOnce(log_.now + absl::Seconds(5)), 1);
  EXPECT_EQ(Status("s1"), v1::SESSION_MONEY_STATUS_CAPTURE_FAILED);
  EXPECT_EQ(Metric("helpline_payments_processor_calls_total",
                   {{"kind", "capture"}, {"result", "declined"}}),
            1);
}

}  // namespace
}  // namespace helpline::payments
