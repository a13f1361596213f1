// helpline-sessions with identity, catalog and matching as processes on the
// test run's Kafka and Redis: a real match becomes a session, the two apps
// join, drop, come back and end it over gRPC, then the review and the
// refund request.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/proto_time.h"
#include "services/sessions/livekit_tokens.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"

namespace helpline::sessions {
namespace {

using ::helpline::testing::Account;
using ::helpline::testing::Platform;
using Stub = v1::SessionsService::Stub;

class SessionsKafkaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new Platform();
    Platform::Options options;
    options.sessions = true;
    options.sessions_config = {{"sessions", {{"grace_period", "5s"}}}};
    ASSERT_TRUE(platform_->Start("sessions", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop()) << "clean shutdown on SIGTERM";
    delete platform_;
  }

  void SetUp() override { Connect(); }

  void Connect() {
    stub_ = v1::SessionsService::NewStub(
        ::helpline::testing::LocalChannel(platform_->sessions().port()));
  }

  template <class Request, class Response, class Method>
  absl::Status Call(Method method, const Account& caller, const Request& request,
                    Response* response) {
    return Platform::Call(*stub_, method, caller, request, response);
  }

  // The session once the reactor has created it from the match.
  v1::Session AwaitSession(const Account& caller, const std::string& session_id) {
    v1::GetSessionRequest request;
    request.set_session_id(session_id);
    v1::GetSessionResponse response;
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    absl::Status status;
    do {
      status = Call(&Stub::GetSession, caller, request, &response);
      if (status.ok()) break;
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    EXPECT_TRUE(status.ok()) << status;
    return response.session();
  }

  absl::StatusOr<v1::JoinSessionResponse> Join(const Account& caller, const std::string& id) {
    v1::JoinSessionRequest request;
    request.set_session_id(id);
    v1::JoinSessionResponse response;
    absl::Status status = Call(&Stub::JoinSession, caller, request, &response);
    if (!status.ok()) return status;
    return response;
  }

  v1::Session Leave(const Account& caller, const std::string& id) {
    v1::LeaveSessionRequest request;
    request.set_session_id(id);
    v1::LeaveSessionResponse response;
    EXPECT_TRUE(Call(&Stub::LeaveSession, caller, request, &response).ok());
    return response.session();
  }

  std::vector<v1::SessionsEvent> Events() {
    std::vector<v1::SessionsEvent> events;
    for (const kafka::Record& record : ::helpline::testing::ReadToEnd(
             platform_->prefix() + "helpline.sessions.events", platform_->partitions())) {
      v1::SessionsEvent event;
      EXPECT_TRUE(event.ParseFromString(record.value));
      events.push_back(std::move(event));
    }
    return events;
  }

  static Platform* platform_;
  std::unique_ptr<Stub> stub_;
};

Platform* SessionsKafkaTest::platform_ = nullptr;

TEST_F(SessionsKafkaTest, AMatchBecomesASessionTheTwoJoinAndTheEndBillsTheirTimeTogether) {
  const std::string category = platform_->NewCategory();
  Account expert = platform_->OnlineExpert(category, 150);
  Account person = platform_->NewAccount();
  Account outsider = platform_->NewAccount();
  matching::v1::Match match = platform_->MatchNow(person, expert, category);
  ASSERT_FALSE(match.match_id().empty());

  v1::Session created = AwaitSession(person, match.match_id());
  EXPECT_EQ(created.status(), v1::SESSION_STATUS_CREATED);
  EXPECT_EQ(created.kind(), v1::SESSION_KIND_HELP_NOW);
  EXPECT_EQ(created.expert_id(), expert.user_id);
  EXPECT_EQ(created.max_minutes(), 20);
  EXPECT_EQ(created.max_amount().amount_minor(), 150 * 20);
  EXPECT_EQ(Join(outsider, match.match_id()).status().code(), absl::StatusCode::kPermissionDenied);
  v1::GetSessionRequest get;
  get.set_session_id(match.match_id());
  v1::GetSessionResponse got;
  EXPECT_EQ(Call(&Stub::GetSession, outsider, get, &got).code(),
            absl::StatusCode::kPermissionDenied);

  absl::StatusOr<v1::JoinSessionResponse> joined = Join(person, match.match_id());
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->session().status(), v1::SESSION_STATUS_WAITING);
  absl::StatusOr<auth::ParsedToken> token = auth::ParseToken(joined->room_token());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(HmacSha256(::helpline::testing::kPlatformLivekitSecret, token->signing_input),
            token->signature)
      << "signed with the LiveKit secret";
  EXPECT_EQ(token->claims["sub"], person.user_id);
  EXPECT_EQ(token->claims["iss"], "test-key");
  EXPECT_EQ(token->claims["video"]["room"], match.match_id());
  EXPECT_EQ(joined->room_name(), match.match_id());

  joined = Join(expert, match.match_id());
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined->session().status(), v1::SESSION_STATUS_LIVE);
  absl::SleepFor(absl::Milliseconds(1500));
  // The person drops and comes back inside the grace period (5 s here).
  EXPECT_EQ(Leave(person, match.match_id()).status(), v1::SESSION_STATUS_RECONNECTING);
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(Join(person, match.match_id()).ok());
  absl::SleepFor(absl::Milliseconds(500));

  v1::EndSessionRequest end;
  end.set_session_id(match.match_id());
  v1::EndSessionResponse ended;
  EXPECT_EQ(Call(&Stub::EndSession, outsider, end, &ended).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Call(&Stub::EndSession, expert, end, &ended).ok());
  const v1::Session& session = ended.session();
  EXPECT_EQ(session.status(), v1::SESSION_STATUS_ENDED);
  EXPECT_EQ(session.ended_by(), expert.user_id);
  absl::Duration billable = FromProtoDuration(session.billing().billable());
  EXPECT_GE(billable, absl::Seconds(2)) << "both there 1.5 s + 0.5 s";
  EXPECT_LT(billable, absl::Milliseconds(2500) + absl::Seconds(2))
      << "the 0.5 s the person was away is not billed";
  EXPECT_EQ(session.billing().billed_minutes(), 5) << "the price's minimum";
  EXPECT_EQ(session.billing().amount().amount_minor(), 5 * 150);

  // The review reaches the expert's rating in catalog.
  v1::SubmitReviewRequest review;
  review.set_session_id(match.match_id());
  review.set_stars(5);
  review.set_text("Fixed my gears in minutes");
  v1::SubmitReviewResponse reviewed;
  EXPECT_EQ(Call(&Stub::SubmitReview, expert, review, &reviewed).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Call(&Stub::SubmitReview, person, review, &reviewed).ok());
  EXPECT_EQ(reviewed.session().review().stars(), 5);
  EXPECT_EQ(Call(&Stub::SubmitReview, person, review, &reviewed).code(), absl::StatusCode::kOk)
      << "a retry answers as the first time";
  review.set_stars(1);
  EXPECT_EQ(Call(&Stub::SubmitReview, person, review, &reviewed).code(), absl::StatusCode::kOk);
  EXPECT_EQ(reviewed.session().review().stars(), 5) << "reviewed once";
  auto catalog = catalog::v1::CatalogService::NewStub(
      ::helpline::testing::LocalChannel(platform_->catalog().port()));
  catalog::v1::GetExpertRequest expert_request;
  expert_request.set_expert_id(expert.user_id);
  catalog::v1::GetExpertResponse profile;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    ASSERT_TRUE(Platform::Call(*catalog, &catalog::v1::CatalogService::Stub::GetExpert, person,
                               expert_request, &profile)
                    .ok());
    if (profile.profile().rating().review_count() == 1) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  EXPECT_EQ(profile.profile().rating().review_count(), 1);
  EXPECT_DOUBLE_EQ(profile.profile().rating().average_stars(), 5.0);

  v1::RequestRefundRequest refund;
  refund.set_session_id(match.match_id());
  refund.set_reason("The gears slip again");
  v1::RequestRefundResponse refunded;
  ASSERT_TRUE(Call(&Stub::RequestRefund, person, refund, &refunded).ok());
  EXPECT_TRUE(refunded.session().refund_requested());

  v1::ListMySessionsResponse mine;
  ASSERT_TRUE(Call(&Stub::ListMySessions, person, v1::ListMySessionsRequest(), &mine).ok());
  ASSERT_GE(mine.sessions_size(), 1);
  EXPECT_EQ(mine.sessions(0).session_id(), match.match_id());
  ASSERT_TRUE(Call(&Stub::ListMySessions, outsider, v1::ListMySessionsRequest(), &mine).ok());
  EXPECT_EQ(mine.sessions_size(), 0);

  int created_events = 0;
  int refund_events = 0;
  for (const v1::SessionsEvent& event : Events()) {
    if (event.meta().aggregate_id() != match.match_id()) continue;
    created_events += event.has_session_created();
    if (event.has_refund_requested()) {
      ++refund_events;
      EXPECT_EQ(event.refund_requested().amount().amount_minor(), 5 * 150);
    }
  }
  EXPECT_EQ(created_events, 1);
  EXPECT_EQ(refund_events, 1);
}

TEST_F(SessionsKafkaTest, NobodyBackInTimeEndsTheSessionAndACrashLosesNothing) {
  const std::string category = platform_->NewCategory();
  Account expert = platform_->OnlineExpert(category, 100);
  Account person = platform_->NewAccount();
  matching::v1::Match match = platform_->MatchNow(person, expert, category);
  AwaitSession(person, match.match_id());
  ASSERT_TRUE(Join(person, match.match_id()).ok());
  ASSERT_TRUE(Join(expert, match.match_id()).ok());

  platform_->sessions().Kill();
  ASSERT_TRUE(platform_->sessions().Start());
  Connect();
  EXPECT_EQ(AwaitSession(expert, match.match_id()).status(), v1::SESSION_STATUS_LIVE)
      << "acknowledged joins survive a crash";

  v1::Session left = Leave(expert, match.match_id());
  EXPECT_EQ(left.status(), v1::SESSION_STATUS_RECONNECTING);
  v1::Session session;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    absl::SleepFor(absl::Milliseconds(200));
    session = AwaitSession(person, match.match_id());
  } while (session.status() != v1::SESSION_STATUS_ENDED && absl::Now() < deadline);
  EXPECT_EQ(session.status(), v1::SESSION_STATUS_ENDED);
  EXPECT_EQ(session.end_reason(), v1::END_REASON_NOT_BACK);
  EXPECT_EQ(FromProtoTime(session.ended_at()), FromProtoTime(left.reconnect_deadline()))
      << "ended as of the deadline, however late the timer fired";
  EXPECT_EQ(session.billing().billed_minutes(), 5);
}

TEST_F(SessionsKafkaTest, BadInputNamesTheField) {
  Account person = platform_->NewAccount();
  auto field_of = [](const absl::Status& status) {
    std::vector<errors::FieldViolation> violations = errors::FieldViolations(status);
    return violations.empty() ? std::string("<none>") : violations[0].field;
  };
  v1::SubmitReviewRequest review;
  review.set_session_id("x");
  review.set_stars(9);
  v1::SubmitReviewResponse reviewed;
  EXPECT_EQ(field_of(Call(&Stub::SubmitReview, person, review, &reviewed)), "stars");
  v1::RequestRefundRequest refund;
  refund.set_session_id("x");
  v1::RequestRefundResponse refunded;
  EXPECT_EQ(field_of(Call(&Stub::RequestRefund, person, refund, &refunded)), "reason");
  v1::JoinSessionResponse joined;
  EXPECT_EQ(field_of(Call(&Stub::JoinSession, person, v1::JoinSessionRequest(), &joined)),
            "session_id");
  v1::ListMySessionsRequest list;
  list.set_page_size(500);
  v1::ListMySessionsResponse listed;
  EXPECT_EQ(field_of(Call(&Stub::ListMySessions, person, list, &listed)), "page_size");
  EXPECT_EQ(Call(&Stub::JoinSession, Account{}, v1::JoinSessionRequest(), &joined).code(),
            absl::StatusCode::kUnauthenticated);
  v1::JoinSessionRequest unknown;
  unknown.set_session_id("no-such-session");
  EXPECT_EQ(Call(&Stub::JoinSession, person, unknown, &joined).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace helpline::sessions
