// helpline-catalog (with helpline-identity for accounts and tokens) as
// processes against the test run's Kafka, called over gRPC the way a
// frontend would.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "services/catalog/domain/catalog_test_log.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"

namespace helpline::catalog {
namespace {

using ::helpline::testing::UniqueName;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::helpline::testing::Account;
using ::helpline::testing::Platform;

class CatalogKafkaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new Platform();
    Platform::Options options;
    options.matching_config = {
        {"matching", {{"presence_ttl", "1s"}, {"presence_sweep_interval", "100ms"}}}};
    ASSERT_TRUE(platform_->Start("cat", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop()) << "clean shutdown on SIGTERM";
    delete platform_;
  }

  void SetUp() override {
    ASSERT_NE(platform_->catalog().port(), 0);
    identity_stub_ = identity::v1::IdentityService::NewStub(
        ::helpline::testing::LocalChannel(platform_->identity().port()));
    Connect();
  }

  void Connect() {
    stub_ = v1::CatalogService::NewStub(
        ::helpline::testing::LocalChannel(platform_->catalog().port()));
  }

  Account NewAccount(identity::v1::AccountType type = identity::v1::ACCOUNT_TYPE_PERSON,
                     std::string email = "") {
    return platform_->NewAccount(type, email);
  }
  Account Admin() { return platform_->Admin(); }
  Account LoginWithRole(const std::string& email, const std::string& role) {
    return platform_->LoginWithRole(email, role);
  }
  absl::Status Heartbeat(const Account& expert, matching::v1::PresenceStatus status) {
    return platform_->Heartbeat(expert, status);
  }

  // Calls a CatalogService method as `caller` (no token when empty).
  template <class Request, class Response, class Method>
  absl::Status Call(Method method, const Account& caller, const Request& request,
                    Response* response) {
    return Platform::Call(*stub_, method, caller, request, response);
  }

  v1::ExpertProfile CreateProfile(const Account& expert, const v1::ProfileContent& content) {
    v1::CreateProfileRequest request;
    request.set_request_id(ids::NewUuidV7());
    *request.mutable_content() = content;
    v1::CreateProfileResponse response;
    absl::Status status = Call(&v1::CatalogService::Stub::CreateProfile, expert, request, &response);
    EXPECT_TRUE(status.ok()) << status;
    return response.profile();
  }

  absl::Status Submit(const Account& expert) {
    v1::SubmitProfileRequest request;
    request.set_request_id(ids::NewUuidV7());
    v1::SubmitProfileResponse response;
    return Call(&v1::CatalogService::Stub::SubmitProfile, expert, request, &response);
  }

  absl::Status Approve(const Account& admin, const std::string& expert_id) {
    v1::ApproveProfileRequest request;
    request.set_request_id(ids::NewUuidV7());
    request.set_expert_id(expert_id);
    v1::ApproveProfileResponse response;
    return Call(&v1::CatalogService::Stub::ApproveProfile, admin, request, &response);
  }

  absl::Status Publish(const Account& expert) {
    v1::PublishProfileRequest request;
    request.set_request_id(ids::NewUuidV7());
    v1::PublishProfileResponse response;
    return Call(&v1::CatalogService::Stub::PublishProfile, expert, request, &response);
  }

  Account PublishedExpert(const v1::ProfileContent& content) {
    return platform_->PublishedExpert(content);
  }

  std::vector<std::string> SearchIds(const Account& caller, v1::SearchExpertsRequest request) {
    v1::SearchExpertsResponse response;
    absl::Status status = Call(&v1::CatalogService::Stub::SearchExperts, caller, request, &response);
    EXPECT_TRUE(status.ok()) << status;
    std::vector<std::string> ids;
    for (const v1::ExpertHit& hit : response.hits()) ids.push_back(hit.expert_id());
    return ids;
  }

  size_t EventCount() {
    return ::helpline::testing::ReadToEnd(platform_->prefix() + "helpline.catalog.events",
                                          platform_->partitions())
        .size();
  }

  static Platform* platform_;
  std::unique_ptr<identity::v1::IdentityService::Stub> identity_stub_;
  std::unique_ptr<v1::CatalogService::Stub> stub_;
};

Platform* CatalogKafkaTest::platform_ = nullptr;

using testing::ValidContent;

std::string Unique(const std::string& word) {
  // A word no other test's profile has, for searches that must find one.
  std::string unique = UniqueName(word);
  unique.erase(std::remove_if(unique.begin(), unique.end(),
                              [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }),
               unique.end());
  return unique;
}

TEST_F(CatalogKafkaTest, TheDefaultCategoryTreeIsThere) {
  v1::ListCategoriesResponse response;
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::ListCategories, NewAccount(),
                   v1::ListCategoriesRequest(), &response)
                  .ok());
  std::set<std::string> ids;
  for (const v1::Category& category : response.categories()) ids.insert(category.category_id());
  for (const char* id : {"home-garden", "bikes-cars", "bike-repair", "cooking", "computers",
                         "languages", "music", "fitness"}) {
    EXPECT_TRUE(ids.contains(id)) << id;
  }
}

TEST_F(CatalogKafkaTest, ProfileLifecycleGrantsTheExpertRoleAndReachesSearch) {
  Account expert = NewAccount();
  Account person = NewAccount();
  Account admin = Admin();
  const std::string word = Unique("derailleur");
  v1::ExpertProfile draft = CreateProfile(expert, ValidContent("Bike help: " + word));
  EXPECT_EQ(draft.status(), v1::PROFILE_STATUS_DRAFT);
  EXPECT_EQ(draft.expert_id(), expert.user_id);

  v1::GetExpertRequest get;
  get.set_expert_id(expert.user_id);
  v1::GetExpertResponse got;
  EXPECT_EQ(Call(&v1::CatalogService::Stub::GetExpert, person, get, &got).code(),
            absl::StatusCode::kNotFound)
      << "nobody else sees a draft";

  ASSERT_TRUE(Submit(expert).ok());
  EXPECT_EQ(Approve(person, expert.user_id).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Approve(expert, expert.user_id).code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Approve(admin, expert.user_id).ok());

  // Identity reacts to ExpertApproved.
  identity::v1::GetMeResponse me;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    absl::SleepFor(absl::Milliseconds(100));
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + expert.access_token);
    me.Clear();
    ASSERT_TRUE(identity_stub_->GetMe(&context, identity::v1::GetMeRequest(), &me).ok());
  } while (std::count(me.user().roles().begin(), me.user().roles().end(), "expert") == 0 &&
           absl::Now() < deadline);
  EXPECT_THAT(me.user().roles(), Contains("expert"));

  v1::SearchExpertsRequest search;
  search.set_text(word);
  EXPECT_THAT(SearchIds(person, search), IsEmpty()) << "approved but not published";
  ASSERT_TRUE(Publish(expert).ok());
  EXPECT_THAT(SearchIds(person, search), ElementsAre(expert.user_id));

  ASSERT_TRUE(Call(&v1::CatalogService::Stub::GetExpert, person, get, &got).ok());
  EXPECT_EQ(got.profile().live().headline(), "Bike help: " + word);
  EXPECT_FALSE(got.profile().has_draft()) << "the public view has no draft";
}

TEST_F(CatalogKafkaTest, AnEditOfAPublishedProfileWaitsForReviewWhileTheOldOneStaysLive) {
  const std::string before = Unique("tandem");
  const std::string after = Unique("unicycle");
  Account expert = PublishedExpert(ValidContent("Bike help: " + before));
  Account person = NewAccount();

  v1::UpdateProfileRequest update;
  update.set_request_id(ids::NewUuidV7());
  update.mutable_content()->set_headline("Bike help: " + after);
  update.mutable_update_mask()->add_paths("headline");
  v1::UpdateProfileResponse updated;
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::UpdateProfile, expert, update, &updated).ok());
  EXPECT_EQ(updated.profile().status(), v1::PROFILE_STATUS_PUBLISHED);
  EXPECT_EQ(updated.profile().held_change(), v1::HELD_CHANGE_STATUS_IN_REVIEW);
  EXPECT_EQ(updated.profile().draft().headline(), "Bike help: " + after);
  EXPECT_EQ(updated.profile().draft().bio(), ValidContent().bio()) << "the mask kept the rest";

  v1::SearchExpertsRequest old_text;
  old_text.set_text(before);
  v1::SearchExpertsRequest new_text;
  new_text.set_text(after);
  EXPECT_THAT(SearchIds(person, old_text), ElementsAre(expert.user_id));
  EXPECT_THAT(SearchIds(person, new_text), IsEmpty());

  v1::ListReviewQueueRequest queue_request;
  queue_request.set_page_size(100);
  v1::ListReviewQueueResponse queue;
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::ListReviewQueue, Admin(), queue_request, &queue).ok());
  EXPECT_TRUE(std::any_of(queue.profiles().begin(), queue.profiles().end(),
                          [&](const v1::ExpertProfile& profile) {
                            return profile.expert_id() == expert.user_id;
                          }));
  EXPECT_EQ(Call(&v1::CatalogService::Stub::ListReviewQueue, person, queue_request, &queue).code(),
            absl::StatusCode::kPermissionDenied);

  ASSERT_TRUE(Approve(Admin(), expert.user_id).ok());
  EXPECT_THAT(SearchIds(person, old_text), IsEmpty());
  EXPECT_THAT(SearchIds(person, new_text), ElementsAre(expert.user_id));
}

TEST_F(CatalogKafkaTest, OnlyAdminsEditCategoriesAndSearchIncludesDescendants) {
  Account person = NewAccount();
  Account admin = Admin();
  const std::string slug = absl::StrCat("cargo-bikes-", Unique("c").substr(0, 12));
  v1::CreateCategoryRequest create;
  create.set_request_id(ids::NewUuidV7());
  create.set_category_id(slug);
  create.set_name("Cargo bikes " + slug);
  create.set_parent_id("bike-repair");
  v1::CreateCategoryResponse created;
  EXPECT_EQ(Call(&v1::CatalogService::Stub::CreateCategory, person, create, &created).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::CreateCategory, admin, create, &created).ok());
  EXPECT_THAT(created.category().path(), ElementsAre("Bikes & cars", "Bike repair",
                                                     "Cargo bikes " + slug));

  const std::string word = Unique("cargo");
  Account expert = PublishedExpert(ValidContent("Cargo bike help " + word, slug));
  v1::SearchExpertsRequest search;
  search.set_text(word);
  search.set_category_id("bikes-cars");
  EXPECT_THAT(SearchIds(person, search), ElementsAre(expert.user_id));
  search.set_category_id("cooking");
  EXPECT_THAT(SearchIds(person, search), IsEmpty());

  v1::MoveCategoryRequest move;
  move.set_request_id(ids::NewUuidV7());
  move.set_category_id(slug);
  move.set_parent_id("cooking");
  v1::MoveCategoryResponse moved;
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::MoveCategory, admin, move, &moved).ok());
  EXPECT_THAT(SearchIds(person, search), ElementsAre(expert.user_id)) << "follows its category";
}

TEST_F(CatalogKafkaTest, BadInputNamesTheFieldAndWritesNothing) {
  Account expert = NewAccount();
  size_t events_before = EventCount();
  v1::ProfileContent content = ValidContent();
  content.set_category_ids(0, "no-such-category");
  content.mutable_price()->mutable_per_minute()->mutable_rate()->set_amount_minor(-100);
  content.mutable_availability()->set_time_zone("Mars/Olympus_Mons");
  content.set_languages(0, "klingon");
  v1::WeeklyWindow& overlap = *content.mutable_availability()->add_weekly();
  overlap.set_weekday(v1::WEEKDAY_MONDAY);
  overlap.mutable_time()->set_start_minute(10 * 60);
  overlap.mutable_time()->set_end_minute(11 * 60);
  v1::CreateProfileRequest request;
  request.set_request_id(ids::NewUuidV7());
  *request.mutable_content() = content;
  v1::CreateProfileResponse response;
  absl::Status status = Call(&v1::CatalogService::Stub::CreateProfile, expert, request, &response);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> fields;
  for (const auto& violation : errors::FieldViolations(status)) fields.push_back(violation.field);
  EXPECT_THAT(fields, UnorderedElementsAre("content.category_ids[0]",
                                           "content.price.per_minute.rate.amount_minor",
                                           "content.availability.time_zone",
                                           "content.availability.weekly[1]",
                                           "content.languages[0]"));

  v1::SearchExpertsRequest search;
  search.set_min_rating(7);
  search.set_language("xx-");
  search.set_category_id("no-such-category");
  v1::SearchExpertsResponse found;
  status = Call(&v1::CatalogService::Stub::SearchExperts, expert, search, &found);
  fields.clear();
  for (const auto& violation : errors::FieldViolations(status)) fields.push_back(violation.field);
  EXPECT_THAT(fields, UnorderedElementsAre("min_rating", "language", "category_id"));

  v1::UpdateProfileRequest update;
  update.set_request_id(ids::NewUuidV7());
  update.mutable_update_mask()->add_paths("nickname");
  v1::UpdateProfileResponse updated;
  status = Call(&v1::CatalogService::Stub::UpdateProfile, expert, update, &updated);
  ASSERT_EQ(errors::FieldViolations(status).size(), 1u);
  EXPECT_EQ(errors::FieldViolations(status)[0].field, "update_mask.paths[0]");

  EXPECT_EQ(Call(&v1::CatalogService::Stub::CreateProfile, Account{}, request, &response).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(EventCount(), events_before) << "a rejected request writes no event";
}

TEST_F(CatalogKafkaTest, SponsorProgramsBelongToSponsorsAndShowInSearch) {
  Account sponsor = NewAccount(identity::v1::ACCOUNT_TYPE_ORGANISATION);
  Account person = NewAccount();
  const std::string word = Unique("sponsoredbike");
  Account expert = PublishedExpert(ValidContent("Bike help " + word));

  v1::CreateSponsorProgramRequest create;
  create.set_request_id(ids::NewUuidV7());
  v1::SponsorProgramTerms& terms = *create.mutable_terms();
  terms.set_name("Bike week");
  terms.add_expert_ids(expert.user_id);
  terms.set_free_sessions_per_person(1);
  terms.set_max_minutes_per_session(20);
  *terms.mutable_active_from() = ToProtoTime(absl::Now() - absl::Minutes(1));
  v1::CreateSponsorProgramResponse created;
  EXPECT_EQ(
      Call(&v1::CatalogService::Stub::CreateSponsorProgram, person, create, &created).code(),
      absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::CreateSponsorProgram, sponsor, create, &created).ok());
  EXPECT_TRUE(created.program().in_effect());
  EXPECT_EQ(created.program().sponsor_id(), sponsor.user_id);

  v1::SearchExpertsRequest search;
  search.set_text(word);
  search.set_sponsored_only(true);
  EXPECT_THAT(SearchIds(person, search), ElementsAre(expert.user_id));

  v1::PauseSponsorProgramRequest pause;
  pause.set_request_id(ids::NewUuidV7());
  pause.set_program_id(created.program().program_id());
  v1::PauseSponsorProgramResponse paused;
  EXPECT_EQ(Call(&v1::CatalogService::Stub::PauseSponsorProgram, person, pause, &paused).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::PauseSponsorProgram, sponsor, pause, &paused).ok());
  EXPECT_EQ(paused.program().status(), v1::SPONSOR_PROGRAM_STATUS_PAUSED);
  EXPECT_THAT(SearchIds(person, search), IsEmpty());

  v1::ListSponsorProgramsRequest list;
  list.set_sponsor_id(sponsor.user_id);
  v1::ListSponsorProgramsResponse listed;
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::ListSponsorPrograms, person, list, &listed).ok());
  EXPECT_THAT(listed.programs(), IsEmpty()) << "a paused program is the sponsor's business";
  ASSERT_TRUE(Call(&v1::CatalogService::Stub::ListSponsorPrograms, sponsor, list, &listed).ok());
  ASSERT_EQ(listed.programs_size(), 1);
}

// Matching's presence events reach catalog's "available now".
TEST_F(CatalogKafkaTest, HeartbeatsMakeAnExpertAvailableNowUntilTheyStop) {
  const std::string word = Unique("presence");
  const std::string email = UniqueName("online") + "@example.org";
  Account before = NewAccount(identity::v1::ACCOUNT_TYPE_PERSON, email);
  EXPECT_EQ(Heartbeat(before, matching::v1::PRESENCE_STATUS_AVAILABLE).code(),
            absl::StatusCode::kPermissionDenied)
      << "only experts go online";
  CreateProfile(before, ValidContent("Bike help " + word));
  ASSERT_TRUE(Submit(before).ok());
  ASSERT_TRUE(Approve(Admin(), before.user_id).ok());
  ASSERT_TRUE(Publish(before).ok());
  Account expert = LoginWithRole(email, "expert");

  v1::SearchExpertsRequest search;
  search.set_text(word);
  search.set_available_now(true);
  EXPECT_THAT(SearchIds(expert, search), IsEmpty());
  EXPECT_EQ(Heartbeat(expert, matching::v1::PRESENCE_STATUS_UNSPECIFIED).code(),
            absl::StatusCode::kInvalidArgument);

  // Sends `status` heartbeats (none for OFFLINE) until search shows the
  // expert as `available` or not.
  auto eventually = [&](matching::v1::PresenceStatus status, bool available) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    do {
      if (status != matching::v1::PRESENCE_STATUS_OFFLINE) {
        EXPECT_TRUE(Heartbeat(expert, status).ok());
      }
      if (SearchIds(expert, search).empty() != available) return true;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    return false;
  };
  EXPECT_TRUE(eventually(matching::v1::PRESENCE_STATUS_AVAILABLE, true))
      << "a heartbeat makes the expert available now";
  EXPECT_TRUE(eventually(matching::v1::PRESENCE_STATUS_BUSY, false)) << "busy is not available";
  EXPECT_TRUE(eventually(matching::v1::PRESENCE_STATUS_AVAILABLE, true));
  // No more heartbeats: offline after the TTL (1 s here) and a sweep.
  EXPECT_TRUE(eventually(matching::v1::PRESENCE_STATUS_OFFLINE, false))
      << "missed heartbeats make the expert offline";
  v1::SearchExpertsRequest anyone;
  anyone.set_text(word);
  EXPECT_THAT(SearchIds(expert, anyone), ElementsAre(expert.user_id)) << "offline, still listed";
}

TEST_F(CatalogKafkaTest, ACrashLosesNoAcknowledgedWrite) {
  const std::string word = Unique("crashproof");
  Account expert = PublishedExpert(ValidContent("Bike help " + word));
  platform_->catalog().Kill();
  ASSERT_TRUE(platform_->catalog().Start());
  Connect();
  v1::GetExpertRequest get;
  get.set_expert_id(expert.user_id);
  v1::GetExpertResponse got;
  absl::Status read = Call(&v1::CatalogService::Stub::GetExpert, NewAccount(), get, &got);
  ASSERT_TRUE(read.ok()) << read;
  EXPECT_EQ(got.profile().status(), v1::PROFILE_STATUS_PUBLISHED);
  v1::SearchExpertsRequest search;
  search.set_text(word);
  EXPECT_THAT(SearchIds(expert, search), ElementsAre(expert.user_id));
  // And it takes writes again.
  v1::UnpublishProfileRequest unpublish;
  unpublish.set_request_id(ids::NewUuidV7());
  v1::UnpublishProfileResponse unpublished;
  ASSERT_TRUE(
      Call(&v1::CatalogService::Stub::UnpublishProfile, expert, unpublish, &unpublished).ok());
  EXPECT_EQ(unpublished.profile().status(), v1::PROFILE_STATUS_UNPUBLISHED);
}

}  // namespace
}  // namespace helpline::catalog
