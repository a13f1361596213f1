#include "services/payments/sandbox/sandbox.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
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

// Issue 20, finding 5: the journal came back in one message, which gRPC
// refuses past 4 MiB (about 20,000 operations), so Reconcile stopped
// working. It comes a page at a time now.
TEST_F(SandboxTest, TheJournalComesAPageAtATimeHoweverLongItIs) {
  constexpr int kOperations = 60'000;
  {
    std::ofstream out(path_);
    for (int i = 0; i < kOperations; ++i) {
      v1::JournalEntry entry;
      entry.set_idempotency_key(absl::StrCat("capture:session-", i));
      entry.set_kind(v1::INTENT_KIND_CAPTURE);
      entry.mutable_amount()->set_currency_code("EUR");
      entry.mutable_amount()->set_amount_minor(1000 + i);
      entry.set_reference(absl::StrCat("session-", i));
      entry.set_authorisation_key(absl::StrCat("auth:session-", i));
      entry.set_approved(true);
      entry.set_processor_reference(absl::StrCat("psp-", i));
      std::string line;
      ASSERT_TRUE(google::protobuf::util::MessageToJsonString(entry, &line).ok());
      out << line << "\n";
    }
  }
  std::unique_ptr<SandboxProcessor> processor = Open();
  v1::ListJournalResponse everything;
  for (const v1::JournalEntry& entry : processor->Journal()) *everything.add_entries() = entry;
  EXPECT_GT(everything.ByteSizeLong(), 4u << 20) << "more than gRPC takes in one message";

  int64_t seen = 0;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<v1::ListJournalResponse> page = processor->JournalPage(5000, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LT(page->ByteSizeLong(), 4u << 20);
    for (const v1::JournalEntry& entry : page->entries()) {
      EXPECT_EQ(entry.amount().amount_minor(), 1000 + seen) << "in order, none skipped";
      ++seen;
    }
    token = page->next_page_token();
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_EQ(seen, kOperations);
  EXPECT_EQ(pages, 12);
  EXPECT_EQ(processor->JournalPage(5000, "not-a-token").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(processor->JournalPage(20000, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(processor->JournalPage(5000, "999999").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace helpline::payments
