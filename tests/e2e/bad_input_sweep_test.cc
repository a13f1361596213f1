// The bad-input sweep: every RPC of the five services, as processes on the
// test run's Kafka and Redis, is called without a token, with an empty
// request, with malformed fields, on someone else's objects and with an
// oversized message. Each answers with the right error (UNAUTHENTICATED;
// INVALID_ARGUMENT naming a field of the request, or PERMISSION_DENIED for
// the wrong role; NOT_FOUND for what cannot exist; PERMISSION_DENIED or
// NOT_FOUND for someone else's; RESOURCE_EXHAUSTED, not a crash), and no
// rejection writes an event.
#include <atomic>
#include <map>
#include <thread>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/consumer.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"
#include "helpline/identity/v1/identity.pb.h"
#include "helpline/matching/v1/matching.pb.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "tools/cli/cli.h"

namespace helpline {
namespace {

using ::helpline::testing::Account;
using ::helpline::testing::Platform;
using google::protobuf::MethodDescriptor;

struct Called {
  absl::StatusCode code = absl::StatusCode::kUnknown;
  std::string message;
};

class BadInputSweepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Platform::Options options;
    options.sessions = true;
    options.payments = true;
    platform_ = new Platform();
    ASSERT_TRUE(platform_->Start("sweep", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop()) << "every service still shuts down cleanly";
    delete platform_;
  }

  static int PortOf(const std::string& service) {
    if (service == "identity") return platform_->identity().port();
    if (service == "catalog") return platform_->catalog().port();
    if (service == "matching") return platform_->matching().port();
    if (service == "sessions") return platform_->sessions().port();
    return platform_->payments().port();
  }

  static std::string ServiceOf(const MethodDescriptor& method) {
    for (const std::string& name : cli::ServiceNames()) {
      if (cli::FindService(name) == method.service()) return name;
    }
    return "";
  }

  static Called Call(const MethodDescriptor& method, const std::string& token,
                     const google::protobuf::Message& request) {
    grpc::Status status = cli::Invoke(::helpline::testing::LocalChannel(PortOf(ServiceOf(method))),
                                      method, token, request, [](const auto&) {});
    return {static_cast<absl::StatusCode>(status.error_code()), status.error_message()};
  }

  static std::unique_ptr<google::protobuf::Message> Empty(const MethodDescriptor& method) {
    return std::unique_ptr<google::protobuf::Message>(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.input_type())->New());
  }

  static std::vector<const MethodDescriptor*> AllMethods() {
    std::vector<const MethodDescriptor*> methods;
    for (const std::string& name : cli::ServiceNames()) {
      const google::protobuf::ServiceDescriptor* service = cli::FindService(name);
      for (int i = 0; i < service->method_count(); ++i) methods.push_back(service->method(i));
    }
    return methods;
  }

  // Every top-level field set to something no service accepts; null when
  // the request has no such field.
  static std::unique_ptr<google::protobuf::Message> Malformed(const MethodDescriptor& method) {
    using google::protobuf::FieldDescriptor;
    std::unique_ptr<google::protobuf::Message> request = Empty(method);
    const google::protobuf::Reflection& set = *request->GetReflection();
    bool any = false;
    for (int i = 0; i < method.input_type()->field_count(); ++i) {
      const FieldDescriptor* field = method.input_type()->field(i);
      if (field->is_repeated()) continue;
      bool was_set = true;
      switch (field->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          set.SetString(request.get(), field, "bad\x01value");
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          set.SetInt32(request.get(), field, -1);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          set.SetInt64(request.get(), field, -1);
          break;
        case FieldDescriptor::CPPTYPE_ENUM:
          set.SetEnumValue(request.get(), field, 999);
          break;
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (field->message_type()->full_name() == "helpline.runtime.v1.Money") {
            runtime::v1::Money money;
            money.set_currency_code("eu");
            money.set_amount_minor(-5);
            set.MutableMessage(request.get(), field)->CopyFrom(money);
          } else {
            was_set = false;
          }
          break;
        default:
          was_set = false;
      }
      any = any || was_set;
    }
    return any ? std::move(request) : nullptr;
  }

  // Records in the five services' events topics now.
  static int64_t EventsWritten() {
    auto consumer = kafka::Consumer::Create(::helpline::testing::TestKafka(), kafka::ConsumerOptions{});
    EXPECT_TRUE(consumer.ok());
    int64_t total = 0;
    for (const std::string& service : cli::ServiceNames()) {
      const std::string topic = es::ServiceTopics::For(service, platform_->prefix()).events;
      for (int p = 0; p < platform_->partitions(); ++p) {
        auto marks = (*consumer)->WatermarkOffsets(topic, p, absl::Seconds(10));
        EXPECT_TRUE(marks.ok()) << topic;
        if (marks.ok()) total += marks->second;
      }
    }
    return total;
  }

  static Platform* platform_;
};

Platform* BadInputSweepTest::platform_ = nullptr;

// RPCs anyone may call: they take a password or a refresh token instead.
const std::set<std::string> kNoToken = {"Register", "Login", "Refresh", "Logout", "GetJwks"};
// RPCs whose request may be empty (lists, own balance, who am I ...).
const std::set<std::string> kEmptyIsFine = {
    "GetMe",         "GetJwks",        "SearchExperts", "ListCategories", "ListSponsorPrograms",
    "ListMyBookings", "ListMySessions", "GetBalance",    "ListTransfers",  "ListReviewQueue",
    "Reconcile"};
// RPCs for one role only.
const std::map<std::string, std::string> kRoleOf = {
    {"ApproveProfile", "admin"},     {"RejectProfile", "admin"},   {"ListReviewQueue", "admin"},
    {"CreateCategory", "admin"},     {"RenameCategory", "admin"},  {"MoveCategory", "admin"},
    {"RetireCategory", "admin"},     {"Reconcile", "admin"},       {"CreateSponsorProgram", "sponsor"},
    {"FundSponsorBudget", "sponsor"}, {"Heartbeat", "expert"},     {"WatchOffers", "expert"},
    {"RequestPayout", "expert"},     {"RetryRefund", "admin"}};

// The message names one of the request's own fields ("category_id: ...").
bool NamesAField(const MethodDescriptor& method, const std::string& message) {
  for (int i = 0; i < method.input_type()->field_count(); ++i) {
    if (absl::StrContains(message, method.input_type()->field(i)->name() + ":") ||
        absl::StrContains(message, method.input_type()->field(i)->name() + ".")) {
      return true;
    }
  }
  return false;
}

TEST_F(BadInputSweepTest, EveryRpcRefusesBadInputWithTheRightErrorAndWritesNothing) {
  Account person = platform_->NewAccount();
  Account stranger = platform_->NewAccount();
  Account admin = platform_->Admin();
  Account sponsor = platform_->NewAccount(identity::v1::ACCOUNT_TYPE_ORGANISATION);
  sponsor = platform_->LoginWithRole(sponsor.email, "sponsor");
  const std::string category = platform_->NewCategory();
  Account expert = platform_->OnlineExpert(category, 150);
  const matching::v1::Match match = platform_->MatchNow(person, expert, category);
  std::map<std::string, const Account*> by_role = {
      {"admin", &admin}, {"sponsor", &sponsor}, {"expert", &expert}};
  ASSERT_FALSE(HasFailure());
  // The expert stays online (going offline would be an event of its own).
  std::atomic<bool> swept{false};
  std::thread heartbeats([&] {
    while (!swept.load()) {
      platform_->Heartbeat(expert, matching::v1::PRESENCE_STATUS_AVAILABLE).IgnoreError();
      for (int i = 0; i < 20 && !swept.load(); ++i) absl::SleepFor(absl::Milliseconds(250));
    }
  });

  // Wait until the setup's reactions are written: then nothing else writes.
  int64_t written = EventsWritten();
  for (int quiet = 0; quiet < 3;) {
    absl::SleepFor(absl::Seconds(1));
    int64_t now = EventsWritten();
    quiet = now == written ? quiet + 1 : 0;
    written = now;
  }

  int checked = 0;
  int malformed_checked = 0;
  for (const MethodDescriptor* method : AllMethods()) {
    const std::string& name = method->name();
    SCOPED_TRACE(method->full_name());
    // No token.
    Called anonymous = Call(*method, "", *Empty(*method));
    if (!kNoToken.contains(name)) {
      EXPECT_EQ(anonymous.code, absl::StatusCode::kUnauthenticated) << anonymous.message;
    } else if (name == "Refresh" || name == "Logout") {
      EXPECT_EQ(anonymous.code, absl::StatusCode::kUnauthenticated) << "no refresh token";
    } else if (name != "GetJwks") {
      EXPECT_EQ(anonymous.code, absl::StatusCode::kInvalidArgument) << anonymous.message;
      EXPECT_TRUE(NamesAField(*method, anonymous.message)) << anonymous.message;
    }
    // The wrong role.
    auto role = kRoleOf.find(name);
    if (role != kRoleOf.end()) {
      Called refused = Call(*method, person.access_token, *Empty(*method));
      EXPECT_EQ(refused.code, absl::StatusCode::kPermissionDenied) << refused.message;
    }
    // An empty request from someone who may call it. (WatchOffers streams
    // for a long while: its empty request is its only form.)
    if (name != "WatchOffers" && !kNoToken.contains(name)) {
      const Account& caller = role == kRoleOf.end() ? person : *by_role.at(role->second);
      Called empty = Call(*method, caller.access_token, *Empty(*method));
      if (kEmptyIsFine.contains(name)) {
        EXPECT_EQ(empty.code, absl::StatusCode::kOk) << empty.message;
      } else {
        EXPECT_EQ(empty.code, absl::StatusCode::kInvalidArgument) << empty.message;
        EXPECT_TRUE(NamesAField(*method, empty.message)) << empty.message;
      }
    }
    // Malformed fields: text with a control character, negative numbers,
    // unknown enum values, negative amounts in no currency.
    std::unique_ptr<google::protobuf::Message> malformed = Malformed(*method);
    if (malformed != nullptr && name != "WatchOffers") {
      const Account& caller = role == kRoleOf.end() ? person : *by_role.at(role->second);
      Called bad = Call(*method, kNoToken.contains(name) ? "" : caller.access_token, *malformed);
      ++malformed_checked;
      if (name == "Refresh" || name == "Logout") {
        EXPECT_EQ(bad.code, absl::StatusCode::kUnauthenticated) << bad.message;
      } else if (bad.code == absl::StatusCode::kInvalidArgument) {
        EXPECT_TRUE(NamesAField(*method, bad.message)) << bad.message;
      } else {
        EXPECT_EQ(bad.code, absl::StatusCode::kNotFound)
            << "malformed: " << absl::StatusCodeToString(bad.code) << " " << bad.message;
      }
    }
    ++checked;
  }
  EXPECT_GE(checked, 50);
  EXPECT_GE(malformed_checked, 40);

  // An oversized message to every RPC at once (gRPC sometimes takes seconds
  // to answer one): refused, and every service keeps serving.
  std::vector<std::thread> senders;
  std::vector<Called> oversized(AllMethods().size());
  for (size_t i = 0; i < AllMethods().size(); ++i) {
    senders.emplace_back([&, i] {
      const MethodDescriptor* method = AllMethods()[i];
      std::unique_ptr<google::protobuf::Message> huge = Empty(*method);
      huge->GetReflection()->MutableUnknownFields(huge.get())->AddLengthDelimited(
          999, std::string((4 << 20) + (1 << 10), 'x'));
      oversized[i] = Call(*method, person.access_token, *huge);
    });
  }
  for (std::thread& sender : senders) sender.join();
  for (size_t i = 0; i < oversized.size(); ++i) {
    EXPECT_EQ(oversized[i].code, absl::StatusCode::kResourceExhausted)
        << AllMethods()[i]->full_name() << ": " << oversized[i].message;
  }
  for (const std::string& service : cli::ServiceNames()) {
    EXPECT_EQ(::helpline::testing::HealthStatus(PortOf(service)).value_or(""), "SERVING") << service;
  }

  // Someone else's objects: the session and the request are Anna's.
  auto with = [](const MethodDescriptor& method, const std::string& field, const std::string& value,
                 std::vector<std::pair<std::string, std::string>> more = {}) {
    more.emplace_back(field, value);
    absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
        cli::BuildRequest(method, more, "");
    EXPECT_TRUE(request.ok()) << request.status();
    return *std::move(request);
  };
  const google::protobuf::ServiceDescriptor* sessions = cli::FindService("sessions");
  const google::protobuf::ServiceDescriptor* matching = cli::FindService("matching");
  std::vector<std::pair<const MethodDescriptor*, std::unique_ptr<google::protobuf::Message>>> others;
  for (const char* method : {"GetSession", "JoinSession", "LeaveSession", "EndSession"}) {
    const MethodDescriptor* m = cli::FindMethod(*sessions, method);
    others.emplace_back(m, with(*m, "session_id", match.match_id()));
  }
  const MethodDescriptor* review = cli::FindMethod(*sessions, "SubmitReview");
  others.emplace_back(review, with(*review, "session_id", match.match_id(), {{"stars", "1"}}));
  const MethodDescriptor* refund = cli::FindMethod(*sessions, "RequestRefund");
  others.emplace_back(refund, with(*refund, "session_id", match.match_id(), {{"reason", "mine now"}}));
  for (const char* method : {"GetRequest", "CancelRequest", "WatchRequest"}) {
    const MethodDescriptor* m = cli::FindMethod(*matching, method);
    others.emplace_back(m, with(*m, "help_request_id", match.match_id()));
  }
  for (const char* method : {"AcceptOffer", "DeclineOffer"}) {
    const MethodDescriptor* m = cli::FindMethod(*matching, method);
    others.emplace_back(m, with(*m, "offer_id", "01a21fc0-5146-7711-88d3-350b0f0abaa0"));
  }
  for (const char* method : {"GetBooking", "CancelBooking"}) {
    const MethodDescriptor* m = cli::FindMethod(*matching, method);
    others.emplace_back(m, with(*m, "booking_id", "01a21fc0-5146-7711-88d3-350b0f0abaa0"));
  }
  for (const auto& [method, request] : others) {
    Called theirs = Call(*method, stranger.access_token, *request);
    EXPECT_TRUE(theirs.code == absl::StatusCode::kPermissionDenied ||
                theirs.code == absl::StatusCode::kNotFound)
        << method->full_name() << ": " << absl::StatusCodeToString(theirs.code) << " "
        << theirs.message;
  }

  const int64_t after = EventsWritten();
  swept = true;
  heartbeats.join();
  if (after != written) {
    for (const std::string& service : cli::ServiceNames()) {
      for (const kafka::Record& record : ::helpline::testing::ReadToEnd(
               es::ServiceTopics::For(service, platform_->prefix()).events, platform_->partitions())) {
        std::cout << service << " " << record.HeaderValue("ce_type").value_or("?") << " "
                  << record.HeaderValue("ce_time").value_or("?") << "\n";
      }
    }
  }
  EXPECT_EQ(after, written) << "a rejected call wrote an event";
}

}  // namespace
}  // namespace helpline
