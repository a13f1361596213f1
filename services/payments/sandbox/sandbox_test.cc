#include "services/payments/sandbox/sandbox.h"

#include <cstdio>

#include "gtest/gtest.h"
#include "services/runtime/core/proto_time.h"
#include "tests/support/test_stack.h"

namespace helpline::payments {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'798'761'600);

v1::ExecuteRequest Call(const std::string& key, v1::IntentKind kind, int64_t amount,
                        const std::string& authorisation = "") {
  v1::ExecuteRequest request;
  request.set_idempotency_key(key);
  request.set_kind(kind);
  request.mutable_amount()->set_currency_code("EUR");
  request.mutable_amount()->set_amount_minor(amount);
  request.set_reference("session-1");
  request.set_authorisation_key(authorisation);
  return request;
}

class SandboxTest : public ::testing::Test {
 protected:
  SandboxTest() : path_(::testing::TempDir() + ::helpline::testing::UniqueName("journal")) {}
  ~SandboxTest() override { std::remove(path_.c_str()); }

  std::unique_ptr<SandboxProcessor> Open() {
    absl::StatusOr<std::unique_ptr<SandboxProcessor>> processor = SandboxProcessor::Open(path_);
    EXPECT_TRUE(processor.ok());
    return *std::move(processor);
  }

  bool Approved(SandboxProcessor& processor, const v1::ExecuteRequest& request) {
    absl::StatusOr<SandboxProcessor::Answer> answer = processor.Execute(request, kNow);
    EXPECT_TRUE(answer.ok()) << answer.status();
    return answer.ok() && answer->response.approved();
  }

  std::string path_;
};

TEST_F(SandboxTest, OneKeyOneOperationAndTheJournalSurvivesARestart) {
  auto processor = Open();
  ASSERT_TRUE(Approved(*processor, Call("auth:1", v1::INTENT_KIND_AUTHORISE, 3000)));
  ASSERT_TRUE(Approved(*processor, Call("capture:1", v1::INTENT_KIND_CAPTURE, 1800, "auth:1")));
  auto again = processor->Execute(Call("capture:1", v1::INTENT_KIND_CAPTURE, 1800, "auth:1"), kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->response.replayed());
  EXPECT_EQ(processor->Journal().size(), 2u) << "a retry moves nothing";

  auto restarted = Open();
  EXPECT_EQ(restarted->Journal().size(), 2u);
  auto replayed =
      restarted->Execute(Call("capture:1", v1::INTENT_KIND_CAPTURE, 1800, "auth:1"), kNow);
  ASSERT_TRUE(replayed.ok());
  EXPECT_TRUE(replayed->response.replayed());
  EXPECT_EQ(replayed->response.processor_reference(), processor->Journal()[1].processor_reference());
}

TEST_F(SandboxTest, CapturesStayWithinTheAuthorisationAndRefundsWithinTheCapture) {
  auto processor = Open();
  EXPECT_FALSE(Approved(*processor, Call("capture:0", v1::INTENT_KIND_CAPTURE, 100, "auth:none")));
  ASSERT_TRUE(Approved(*processor, Call("auth:1", v1::INTENT_KIND_AUTHORISE, 3000)));
  EXPECT_FALSE(Approved(*processor, Call("capture:big", v1::INTENT_KIND_CAPTURE, 3001, "auth:1")));
  ASSERT_TRUE(Approved(*processor, Call("capture:1", v1::INTENT_KIND_CAPTURE, 1800, "auth:1")));
  EXPECT_FALSE(Approved(*processor, Call("void:1", v1::INTENT_KIND_VOID, 0, "auth:1")));
  EXPECT_FALSE(Approved(*processor, Call("refund:big", v1::INTENT_KIND_REFUND, 1801, "auth:1")));
  EXPECT_TRUE(Approved(*processor, Call("refund:1", v1::INTENT_KIND_REFUND, 1800, "auth:1")));
}

TEST_F(SandboxTest, ScriptedDeclinesAndSlowAnswers) {
  auto processor = Open();
  v1::ScriptRequest script;
  v1::ScriptRule& decline = *script.add_rules();
  decline.set_kind(v1::INTENT_KIND_AUTHORISE);
  decline.set_decline_reason("card declined");
  decline.set_times(1);
  v1::ScriptRule& slow = *script.add_rules();
  slow.set_kind(v1::INTENT_KIND_CAPTURE);
  *slow.mutable_delay() = ToProtoDuration(absl::Seconds(3));
  processor->Script(script);
  auto declined = processor->Execute(Call("auth:1", v1::INTENT_KIND_AUTHORISE, 100), kNow);
  ASSERT_TRUE(declined.ok());
  EXPECT_FALSE(declined->response.approved());
  EXPECT_EQ(declined->response.decline_reason(), "card declined");
  EXPECT_TRUE(Approved(*processor, Call("auth:2", v1::INTENT_KIND_AUTHORISE, 100)))
      << "the rule was for one call";
  auto slowly = processor->Execute(Call("capture:2", v1::INTENT_KIND_CAPTURE, 100, "auth:2"), kNow);
  ASSERT_TRUE(slowly.ok());
  EXPECT_TRUE(slowly->response.approved());
  EXPECT_EQ(slowly->delay, absl::Seconds(3));
  EXPECT_EQ(processor->Journal().size(), 3u) << "journaled before the slow answer";
}

}  // namespace
}  // namespace helpline::payments
