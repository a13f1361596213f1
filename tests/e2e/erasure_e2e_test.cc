// Deleting an account, across the five services as processes on the test
// run's Kafka: what the account had live elsewhere ends (an expert's profile
// leaves search, their bookings still to come are cancelled by the platform
// with their sessions; a person's waiting request is cancelled), its token
// is refused everywhere before it expires, its words are no longer shown,
// its email, name and what it wrote are in clear in no topic at all, and
// the keys that sealed them are erased from every service's keys topic.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "services/catalog/domain/catalog_test_log.h"
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
using IdentityStub = identity::v1::IdentityService::Stub;
using MatchingStub = matching::v1::MatchingService::Stub;
using SessionsStub = sessions::v1::SessionsService::Stub;

// Letters only, so that search takes it as one word of a name.
std::string UniqueWord() {
  std::string word;
  for (char c : ids::NewUuidV7()) {
    if (std::isxdigit(static_cast<unsigned char>(c))) word += static_cast<char>('k' + (c % 16));
  }
  return word.substr(word.size() - 12);
}

class ErasureE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Platform::Options options;
    options.sessions = true;
    options.payments = true;
    platform_ = new Platform();
    ASSERT_TRUE(platform_->Start("erasure", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop());
    delete platform_;
  }

  void SetUp() override {
    identity_ = identity::v1::IdentityService::NewStub(LocalChannel(platform_->identity().port()));
    catalog_ = catalog::v1::CatalogService::NewStub(LocalChannel(platform_->catalog().port()));
    matching_ = matching::v1::MatchingService::NewStub(LocalChannel(platform_->matching().port()));
    sessions_ = sessions::v1::SessionsService::NewStub(LocalChannel(platform_->sessions().port()));
  }

  // A new account whose display name is `name`, signed in.
  Account Register(const std::string& name) {
    identity::v1::RegisterRequest request;
    request.set_request_id(ids::NewUuidV7());
    request.set_email(absl::StrCat(UniqueWord(), ".", UniqueWord(), "@example.org"));
    request.set_password(::helpline::testing::kPlatformPassword);
    request.set_display_name(name);
    request.set_account_type(identity::v1::ACCOUNT_TYPE_PERSON);
    identity::v1::RegisterResponse registered;
    grpc::ClientContext context;
    grpc::Status status = identity_->Register(&context, request, &registered);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return platform_->Login(request.email());
  }

  absl::Status Delete(const Account& account) {
    identity::v1::DeleteAccountRequest request;
    request.set_request_id(ids::NewUuidV7());
    request.set_password(::helpline::testing::kPlatformPassword);
    identity::v1::DeleteAccountResponse response;
    return Platform::Call(*identity_, &IdentityStub::DeleteAccount, account, request, &response);
  }

  // `expert` (signed in) creates `content` as their profile; an admin
  // approves it; it is published.
  void Publish(const Account& expert, const catalog::v1::ProfileContent& content) {
    catalog::v1::CreateProfileRequest create;
    create.set_request_id(ids::NewUuidV7());
    *create.mutable_content() = content;
    catalog::v1::CreateProfileResponse created;
    ASSERT_TRUE(Platform::Call(*catalog_, &CatalogStub::CreateProfile, expert, create, &created).ok());
    catalog::v1::SubmitProfileRequest submit;
    submit.set_request_id(ids::NewUuidV7());
    catalog::v1::SubmitProfileResponse submitted;
    ASSERT_TRUE(Platform::Call(*catalog_, &CatalogStub::SubmitProfile, expert, submit, &submitted).ok());
    catalog::v1::ApproveProfileRequest approve;
    approve.set_request_id(ids::NewUuidV7());
    approve.set_expert_id(expert.user_id);
    catalog::v1::ApproveProfileResponse approved;
    ASSERT_TRUE(Platform::Call(*catalog_, &CatalogStub::ApproveProfile, platform_->Admin(), approve,
                               &approved)
                    .ok());
    catalog::v1::PublishProfileRequest publish;
    publish.set_request_id(ids::NewUuidV7());
    catalog::v1::PublishProfileResponse published;
    Account with_role = platform_->LoginWithRole(expert.email, "expert");
    ASSERT_TRUE(
        Platform::Call(*catalog_, &CatalogStub::PublishProfile, with_role, publish, &published).ok());
  }

  int SearchHits(const Account& who, const std::string& text) {
    catalog::v1::SearchExpertsRequest request;
    request.set_text(text);
    catalog::v1::SearchExpertsResponse response;
    absl::Status status =
        Platform::Call(*catalog_, &CatalogStub::SearchExperts, who, request, &response);
    return status.ok() ? response.hits_size() : -1;
  }

  absl::StatusCode GetExpert(const Account& who, const std::string& expert_id) {
    catalog::v1::GetExpertRequest request;
    request.set_expert_id(expert_id);
    catalog::v1::GetExpertResponse response;
    return Platform::Call(*catalog_, &CatalogStub::GetExpert, who, request, &response).code();
  }

  matching::v1::Booking Booking(const Account& who, const std::string& booking_id) {
    matching::v1::GetBookingRequest request;
    request.set_booking_id(booking_id);
    matching::v1::GetBookingResponse response;
    Platform::Call(*matching_, &MatchingStub::GetBooking, who, request, &response).IgnoreError();
    return response.booking();
  }

  // Every record's key and value in every topic the platform writes.
  std::vector<std::pair<std::string, kafka::Record>> EveryRecord() {
    std::vector<std::string> topics = {platform_->prefix() + "helpline.deadletter"};
    for (const char* service : {"identity", "catalog", "matching", "sessions", "payments"}) {
      es::ServiceTopics owned = es::ServiceTopics::For(service, platform_->prefix());
      for (const std::string& topic :
           {owned.commands, owned.events, owned.replies, owned.snapshots, owned.keys}) {
        topics.push_back(topic);
      }
    }
    std::vector<std::pair<std::string, kafka::Record>> records;
    for (const std::string& topic : topics) {
      for (kafka::Record& record : ::helpline::testing::ReadToEnd(topic, platform_->partitions())) {
        records.emplace_back(topic, std::move(record));
      }
    }
    return records;
  }

  // How many keys of `user_id` the service's keys topic has, and how many
  // of them are erased (their last record a tombstone).
  std::pair<int, int> KeysOf(const std::string& service, const std::string& user_id) {
    std::map<std::string, bool> erased;
    for (const kafka::Record& record : ::helpline::testing::ReadToEnd(
             es::ServiceTopics::For(service, platform_->prefix()).keys, platform_->partitions())) {
      if (absl::StartsWith(record.key, user_id + "/")) erased[record.key] = record.value.empty();
    }
    int gone = 0;
    for (const auto& [key, tombstone] : erased) gone += tombstone ? 1 : 0;
    return {static_cast<int>(erased.size()), gone};
  }

  static Platform* platform_;
  std::unique_ptr<IdentityStub> identity_;
  std::unique_ptr<CatalogStub> catalog_;
  std::unique_ptr<MatchingStub> matching_;
  std::unique_ptr<SessionsStub> sessions_;
};

Platform* ErasureE2eTest::platform_ = nullptr;

TEST_F(ErasureE2eTest, ADeletedAccountLeavesNothingLiveAndItsEmailNowhereInClear) {
  const std::string name = absl::StrCat("Ottoline ", UniqueWord());
  Account expert = Register(name);
  catalog::v1::ProfileContent content = catalog::testing::ValidContent("Erasable bike repairs");
  content.set_public_name(name);
  Publish(expert, content);
  Account person = Register("Wilbur Asker");
  const std::string word = name.substr(name.find(' ') + 1);
  ASSERT_EQ(Eventually<int>([&] { return SearchHits(person, word); }, [](int n) { return n == 1; }),
            1)
      << "the published expert is found by name";

  // The person books the expert's time, and waits in a line nobody serves.
  matching::v1::BookSlotRequest book;
  book.set_request_id(ids::NewUuidV7());
  book.set_expert_id(expert.user_id);
  *book.mutable_start() = ToProtoTime(Platform::NextMondayAtTen());
  book.set_minutes(30);
  book.set_note(absl::StrCat("See you then, ", name));
  matching::v1::BookSlotResponse booked;
  absl::Status booking = Eventually<absl::Status>(
      [&] { return Platform::Call(*matching_, &MatchingStub::BookSlot, person, book, &booked); },
      [](const absl::Status& s) { return s.code() != absl::StatusCode::kNotFound; });
  ASSERT_TRUE(booking.ok()) << booking;
  EXPECT_EQ(booked.booking().note(), book.note()) << "the note reads as the person wrote it";
  const std::string booking_id = booked.booking().booking_id();
  auto session_status = [&] {
    sessions::v1::GetSessionRequest get;
    get.set_session_id(booking_id);
    sessions::v1::GetSessionResponse got;
    Platform::Call(*sessions_, &SessionsStub::GetSession, person, get, &got).IgnoreError();
    return got.session().status();
  };
  ASSERT_EQ(Eventually<sessions::v1::SessionStatus>(
                session_status,
                [](sessions::v1::SessionStatus s) { return s == sessions::v1::SESSION_STATUS_CREATED; }),
            sessions::v1::SESSION_STATUS_CREATED);
  matching::v1::HelpRequest waiting =
      platform_->AskForHelp(person, Platform::HelpRequestFor(platform_->NewCategory()));
  ASSERT_EQ(waiting.status(), matching::v1::HELP_REQUEST_STATUS_WAITING);
  EXPECT_EQ(waiting.description(), Platform::HelpRequestFor("x").description());
  EXPECT_EQ(KeysOf("catalog", expert.user_id), std::make_pair(1, 0))
      << "catalog sealed the profile with one key of the expert's";
  EXPECT_EQ(KeysOf("matching", person.user_id), std::make_pair(1, 0))
      << "matching sealed the note and the description with one key of the person's";

  // The expert deletes their account.
  ASSERT_TRUE(Delete(expert).ok());
  EXPECT_EQ(Eventually<absl::StatusCode>([&] { return GetExpert(person, expert.user_id); },
                                         [](absl::StatusCode c) { return c == absl::StatusCode::kNotFound; }),
            absl::StatusCode::kNotFound)
      << "the profile is gone";
  EXPECT_EQ(SearchHits(person, word), 0) << "nobody finds the expert by name";
  EXPECT_EQ(GetExpert(platform_->Admin(), expert.user_id), absl::StatusCode::kNotFound)
      << "not even an admin";
  matching::v1::Booking cancelled = Eventually<matching::v1::Booking>(
      [&] { return Booking(person, booking_id); },
      [](const matching::v1::Booking& b) { return b.status() == matching::v1::BOOKING_STATUS_CANCELLED; });
  EXPECT_EQ(cancelled.status(), matching::v1::BOOKING_STATUS_CANCELLED);
  EXPECT_EQ(cancelled.cancelled_by(), "platform");
  EXPECT_EQ(cancelled.cancel_reason(), "the expert's account was deleted");
  EXPECT_FALSE(cancelled.late_cancellation()) << "the person owes nothing";
  EXPECT_EQ(Eventually<sessions::v1::SessionStatus>(
                session_status,
                [](sessions::v1::SessionStatus s) { return s == sessions::v1::SESSION_STATUS_CANCELLED; }),
            sessions::v1::SESSION_STATUS_CANCELLED)
      << "the booked session is cancelled with it";

  // The expert's token has not expired, yet no service takes it any more.
  auto refused = [](const absl::Status& status) {
    return status.code() == absl::StatusCode::kUnauthenticated &&
           absl::StrContains(status.message(), "deleted");
  };
  matching::v1::BookSlotRequest rebook = book;
  rebook.set_request_id(ids::NewUuidV7());
  rebook.set_expert_id(person.user_id);
  matching::v1::BookSlotResponse rebooked;
  EXPECT_TRUE(refused(Eventually<absl::Status>(
      [&] { return Platform::Call(*matching_, &MatchingStub::BookSlot, expert, rebook, &rebooked); },
      refused)));
  catalog::v1::CreateProfileRequest again;
  again.set_request_id(ids::NewUuidV7());
  *again.mutable_content() = content;
  catalog::v1::CreateProfileResponse created_again;
  EXPECT_TRUE(refused(
      Platform::Call(*catalog_, &CatalogStub::CreateProfile, expert, again, &created_again)));
  sessions::v1::GetSessionRequest get_session;
  get_session.set_session_id(booking_id);
  sessions::v1::GetSessionResponse got_session;
  EXPECT_TRUE(refused(
      Platform::Call(*sessions_, &SessionsStub::GetSession, expert, get_session, &got_session)));

  // The person deletes theirs: the request stops waiting.
  ASSERT_TRUE(Delete(person).ok());
  Account admin = platform_->Admin();
  auto request_seen = [&] {
    matching::v1::GetRequestRequest get;
    get.set_help_request_id(waiting.help_request_id());
    matching::v1::GetRequestResponse got;
    Platform::Call(*matching_, &MatchingStub::GetRequest, admin, get, &got).IgnoreError();
    return got.help_request();
  };
  matching::v1::HelpRequest ended = Eventually<matching::v1::HelpRequest>(
      request_seen, [](const matching::v1::HelpRequest& r) {
        return r.status() == matching::v1::HELP_REQUEST_STATUS_CANCELLED;
      });
  EXPECT_EQ(ended.status(), matching::v1::HELP_REQUEST_STATUS_CANCELLED);
  EXPECT_EQ(ended.description(), "") << "the person's words are gone, even for an admin";
  EXPECT_FALSE(ended.person_id().empty()) << "the request itself stays in the history";

  // Every service that sealed their words erases the keys.
  using Keys = std::pair<int, int>;
  auto all_erased = [](const Keys& keys) { return keys.first > 0 && keys.second == keys.first; };
  EXPECT_EQ(Eventually<Keys>([&] { return KeysOf("catalog", expert.user_id); }, all_erased),
            Keys(1, 1));
  EXPECT_EQ(Eventually<Keys>([&] { return KeysOf("matching", person.user_id); }, all_erased),
            Keys(1, 1));

  // Nothing of either email, the expert's name or the person's words is in
  // clear anywhere: commands, events, replies, snapshots, keys, dead letters.
  const std::vector<std::string> secrets = {expert.email, person.email, name, word,
                                            waiting.description()};
  int records = 0;
  for (const auto& [topic, record] : EveryRecord()) {
    ++records;
    for (const std::string& secret : secrets) {
      EXPECT_FALSE(absl::StrContains(record.value, secret) || absl::StrContains(record.key, secret))
          << "'" << secret << "' in clear in " << topic;
    }
  }
  EXPECT_GT(records, 50) << "the scan read the topics";
}

}  // namespace
}  // namespace helpline
