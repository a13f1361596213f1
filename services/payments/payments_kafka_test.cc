// helpline-payments with the sandbox processor and the other services as
// processes on the test run's Kafka and Redis: a real match is held at the
// processor, the session's end is captured with the exact split, a refund
// reverses it, a declined card cancels the session, and Reconcile agrees.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/payments/v1/payments.grpc.pb.h"
#include "helpline/payments/v1/processor.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "services/catalog/domain/catalog_test_log.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/platform.h"

namespace helpline::payments {
namespace {

using ::helpline::testing::Account;
using ::helpline::testing::Platform;
using Stub = v1::PaymentsService::Stub;
using SessionsStub = sessions::v1::SessionsService::Stub;

class PaymentsKafkaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new Platform();
    Platform::Options options;
    options.sessions = true;
    options.payments = true;
    ASSERT_TRUE(platform_->Start("payments", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop()) << "clean shutdown on SIGTERM";
    delete platform_;
  }

  void SetUp() override {
    stub_ = v1::PaymentsService::NewStub(
        ::helpline::testing::LocalChannel(platform_->payments().port()));
    sessions_ = sessions::v1::SessionsService::NewStub(
        ::helpline::testing::LocalChannel(platform_->sessions().port()));
    psp_ = v1::SandboxProcessorService::NewStub(
        ::helpline::testing::LocalChannel(platform_->psp().port()));
  }

  v1::GetBalanceResponse Balance(const Account& who) {
    v1::GetBalanceResponse balance;
    EXPECT_TRUE(Platform::Call(*stub_, &Stub::GetBalance, who, v1::GetBalanceRequest(), &balance)
                    .ok());
    return balance;
  }

  v1::GetBalanceResponse BalanceUntil(const Account& who,
                                      const std::function<bool(const v1::GetBalanceResponse&)>& check) {
    return ::helpline::testing::Eventually<v1::GetBalanceResponse>([&] { return Balance(who); },
                                                                    check);
  }

  sessions::v1::Session SessionUntil(const Account& who, const std::string& id,
                                     sessions::v1::SessionStatus status) {
    return ::helpline::testing::Eventually<sessions::v1::Session>(
        [&] {
          sessions::v1::GetSessionRequest get;
          get.set_session_id(id);
          sessions::v1::GetSessionResponse got;
          Platform::Call(*sessions_, &SessionsStub::GetSession, who, get, &got).IgnoreError();
          return got.session();
        },
        [&](const sessions::v1::Session& session) { return session.status() == status; });
  }

  absl::Status SessionCall(const Account& who, const std::string& id, bool join) {
    if (join) {
      sessions::v1::JoinSessionRequest request;
      request.set_session_id(id);
      sessions::v1::JoinSessionResponse response;
      return Platform::Call(*sessions_, &SessionsStub::JoinSession, who, request, &response);
    }
    sessions::v1::EndSessionRequest request;
    request.set_session_id(id);
    sessions::v1::EndSessionResponse response;
    return Platform::Call(*sessions_, &SessionsStub::EndSession, who, request, &response);
  }

  // The sandbox processor declines the next authorisation ("insufficient funds").
  grpc::Status DeclineTheNextCard() {
    v1::ScriptRequest script;
    v1::ScriptRule& decline = *script.add_rules();
    decline.set_kind(v1::INTENT_KIND_AUTHORISE);
    decline.set_decline_reason("insufficient funds");
    decline.set_times(1);
    grpc::ClientContext context;
    v1::ScriptResponse scripted;
    return psp_->Script(&context, script, &scripted);
  }

  static Platform* platform_;
  std::unique_ptr<Stub> stub_;
  std::unique_ptr<SessionsStub> sessions_;
  std::unique_ptr<v1::SandboxProcessorService::Stub> psp_;
};

Platform* PaymentsKafkaTest::platform_ = nullptr;

TEST_F(PaymentsKafkaTest, AMatchIsHeldTheEndIsCapturedWithTheSplitAndARefundReversesIt) {
  const std::string category = platform_->NewCategory();
  Account expert = platform_->OnlineExpert(category, 150);
  Account person = platform_->NewAccount();
  matching::v1::Match match = platform_->MatchNow(person, expert, category);
  // Held: 20 min × 150 = 3000, of which the expert's share 2400 is pending.
  v1::GetBalanceResponse held = BalanceUntil(expert, [](const v1::GetBalanceResponse& b) {
    return b.expert().pending().amount_minor() == 2400;
  });
  EXPECT_EQ(held.expert().pending().amount_minor(), 2400);

  SessionUntil(person, match.match_id(), sessions::v1::SESSION_STATUS_CREATED);
  ASSERT_TRUE(SessionCall(person, match.match_id(), true).ok());
  ASSERT_TRUE(SessionCall(expert, match.match_id(), true).ok());
  ASSERT_TRUE(SessionCall(expert, match.match_id(), false).ok());
  // Billed: the minimum 5 minutes × 150 = 750; fee 150, share 600.
  v1::GetBalanceResponse spent = BalanceUntil(person, [](const v1::GetBalanceResponse& b) {
    return b.person().spent().amount_minor() == 750;
  });
  EXPECT_EQ(spent.person().spent().amount_minor(), 750);
  EXPECT_EQ(Balance(expert).expert().pending().amount_minor(), 600)
      << "the share, inside the refund window; the rest of the hold released";

  sessions::v1::RequestRefundRequest refund;
  refund.set_session_id(match.match_id());
  refund.set_reason("It broke again");
  sessions::v1::RequestRefundResponse refunded;
  ASSERT_TRUE(Platform::Call(*sessions_, &SessionsStub::RequestRefund, person, refund, &refunded)
                  .ok());
  v1::GetBalanceResponse back = BalanceUntil(person, [](const v1::GetBalanceResponse& b) {
    return b.person().refunded().amount_minor() == 750;
  });
  EXPECT_EQ(back.person().refunded().amount_minor(), 750);
  EXPECT_EQ(Balance(expert).expert().pending().amount_minor(), 0);

  // The processor has exactly one capture and one refund for it, and the ledger agrees.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  v1::ReconcileResponse reconciled;
  do {
    reconciled.Clear();
    ASSERT_TRUE(Platform::Call(*stub_, &Stub::Reconcile, platform_->Admin(),
                               v1::ReconcileRequest(), &reconciled)
                    .ok());
    if (reconciled.processor_matches_ledger() && reconciled.problems().empty()) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(reconciled.balances_match_replay());
  EXPECT_TRUE(reconciled.processor_matches_ledger());
  EXPECT_TRUE(reconciled.flags_hold());
  EXPECT_TRUE(reconciled.accounts_sum_to_zero());
  for (const std::string& problem : reconciled.problems()) ADD_FAILURE() << problem;
  grpc::ClientContext context;
  v1::ListJournalResponse journal;
  ASSERT_TRUE(psp_->ListJournal(&context, v1::ListJournalRequest(), &journal).ok());
  int captures = 0;
  for (const v1::JournalEntry& entry : journal.entries()) {
    captures += entry.kind() == v1::INTENT_KIND_CAPTURE && entry.reference() == match.match_id();
  }
  EXPECT_EQ(captures, 1);
  EXPECT_EQ(Platform::Call(*stub_, &Stub::Reconcile, person, v1::ReconcileRequest(), &reconciled)
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(PaymentsKafkaTest, APayoutNeedsTheExpertRoleARequestIdAndAvailableEarnings) {
  const std::string category = platform_->NewCategory();
  Account expert = platform_->OnlineExpert(category, 150);
  Account person = platform_->NewAccount();
  v1::RequestPayoutRequest request;
  request.set_request_id(ids::NewUuidV7());
  v1::RequestPayoutResponse response;
  EXPECT_EQ(Platform::Call(*stub_, &Stub::RequestPayout, person, request, &response).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Platform::Call(*stub_, &Stub::RequestPayout, Account{}, request, &response).code(),
            absl::StatusCode::kUnauthenticated);
  v1::RequestPayoutRequest no_id;
  absl::Status missing = Platform::Call(*stub_, &Stub::RequestPayout, expert, no_id, &response);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("request_id"), std::string::npos) << missing;
  // Nothing earned yet, so nothing past the refund window.
  absl::Status nothing = Platform::Call(*stub_, &Stub::RequestPayout, expert, request, &response);
  EXPECT_EQ(nothing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(nothing.message().find("minimum payout"), std::string::npos) << nothing;
}

TEST_F(PaymentsKafkaTest, ADeclinedCardCancelsTheSession) {
  const std::string category = platform_->NewCategory();
  Account expert = platform_->OnlineExpert(category, 150);
  Account person = platform_->NewAccount();
  ASSERT_TRUE(DeclineTheNextCard().ok());
  matching::v1::Match match = platform_->MatchNow(person, expert, category);
  sessions::v1::Session session =
      SessionUntil(person, match.match_id(), sessions::v1::SESSION_STATUS_CANCELLED);
  EXPECT_EQ(session.status(), sessions::v1::SESSION_STATUS_CANCELLED);
  EXPECT_NE(session.cancel_reason().find("insufficient funds"), std::string::npos)
      << session.cancel_reason();
  EXPECT_EQ(SessionCall(person, match.match_id(), true).code(), absl::StatusCode::kFailedPrecondition);
}

// A booking whose hold the card refused gives its slot back: the session is
// cancelled, the booking shows the platform cancelled it and why, and
// someone else can book the slot.
TEST_F(PaymentsKafkaTest, ADeclinedCardGivesTheBookedSlotBack) {
  Account expert = platform_->PublishedExpert(catalog::testing::ValidContent("Declined bookings"));
  Account person = platform_->NewAccount();
  Account next = platform_->NewAccount();
  ASSERT_TRUE(DeclineTheNextCard().ok());

  auto matching = matching::v1::MatchingService::NewStub(
      ::helpline::testing::LocalChannel(platform_->matching().port()));
  using MatchingStub = matching::v1::MatchingService::Stub;
  auto book = [&](const Account& who, matching::v1::BookSlotResponse* booked) {
    matching::v1::BookSlotRequest request;
    request.set_request_id(ids::NewUuidV7());
    request.set_expert_id(expert.user_id);
    *request.mutable_start() = ToProtoTime(Platform::NextMondayAtTen());
    request.set_minutes(30);
    absl::Status status;
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    do {  // matching sees the new expert a moment after catalog publishes it
      status = Platform::Call(*matching, &MatchingStub::BookSlot, who, request, booked);
      if (status.code() != absl::StatusCode::kNotFound) break;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    return status;
  };
  matching::v1::BookSlotResponse booked;
  ASSERT_TRUE(book(person, &booked).ok());
  const std::string booking_id = booked.booking().booking_id();

  sessions::v1::Session session =
      SessionUntil(person, booking_id, sessions::v1::SESSION_STATUS_CANCELLED);
  EXPECT_EQ(session.status(), sessions::v1::SESSION_STATUS_CANCELLED);
  matching::v1::Booking booking = ::helpline::testing::Eventually<matching::v1::Booking>(
      [&] {
        matching::v1::GetBookingRequest get;
        get.set_booking_id(booking_id);
        matching::v1::GetBookingResponse got;
        Platform::Call(*matching, &MatchingStub::GetBooking, person, get, &got).IgnoreError();
        return got.booking();
      },
      [](const matching::v1::Booking& b) {
        return b.status() == matching::v1::BOOKING_STATUS_CANCELLED;
      });
  EXPECT_EQ(booking.status(), matching::v1::BOOKING_STATUS_CANCELLED);
  EXPECT_EQ(booking.cancelled_by(), "platform");
  EXPECT_NE(booking.cancel_reason().find("insufficient funds"), std::string::npos)
      << booking.cancel_reason();
  EXPECT_FALSE(booking.late_cancellation());

  matching::v1::BookSlotResponse rebooked;
  EXPECT_TRUE(book(next, &rebooked).ok()) << "the slot is free again";
}

}  // namespace
}  // namespace helpline::payments
