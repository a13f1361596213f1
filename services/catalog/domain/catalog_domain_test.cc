#include "services/catalog/domain/catalog_domain.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/catalog/domain/catalog_test_log.h"
#include "services/catalog/domain/default_categories.h"
#include "services/catalog/domain/reactions.h"
#include "services/catalog/domain/read_model.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::catalog {
namespace {

using testing::CatalogTestLog;
using testing::ValidContent;
using ::testing::ElementsAre;

constexpr char kExpert[] = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

v1::CatalogCommand Create(const v1::ProfileContent& content) {
  v1::CatalogCommand command;
  *command.mutable_create_profile()->mutable_content() = content;
  return command;
}
v1::CatalogCommand Update(const v1::ProfileContent& content) {
  v1::CatalogCommand command;
  *command.mutable_update_profile()->mutable_content() = content;
  return command;
}
v1::CatalogCommand Submit() {
  v1::CatalogCommand command;
  command.mutable_submit_profile();
  return command;
}
v1::CatalogCommand Approve() {
  v1::CatalogCommand command;
  command.mutable_approve_profile();
  return command;
}
v1::CatalogCommand Reject(const std::string& reason) {
  v1::CatalogCommand command;
  command.mutable_reject_profile()->set_reason(reason);
  return command;
}
v1::CatalogCommand Publish(bool by_admin = false) {
  v1::CatalogCommand command;
  command.mutable_publish_profile()->set_by_admin(by_admin);
  return command;
}
v1::CatalogCommand Unpublish(bool by_admin = false, const std::string& reason = "") {
  v1::CatalogCommand command;
  command.mutable_unpublish_profile()->set_by_admin(by_admin);
  command.mutable_unpublish_profile()->set_reason(reason);
  return command;
}

const v1::ProfileState& Profile(CatalogTestLog& log) { return log.StateOf(kExpert).profile(); }

TEST(ProfileLifecycle, DraftSubmitApprovePublishUnpublish) {
  CatalogTestLog log;
  ASSERT_TRUE(log.Send(kExpert, Create(ValidContent())).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_DRAFT);
  EXPECT_EQ(log.Send(kExpert, Publish()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log.Send(kExpert, Approve()).status().code(), absl::StatusCode::kFailedPrecondition)
      << "a draft nobody submitted is not up for review";

  ASSERT_TRUE(log.Send(kExpert, Submit()).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_SUBMITTED);
  auto approved = log.Send(kExpert, Approve());
  ASSERT_TRUE(approved.ok());
  ASSERT_EQ(approved->size(), 1u);
  ASSERT_TRUE((*approved)[0].has_expert_approved()) << "identity grants the role on this event";
  EXPECT_EQ((*approved)[0].expert_approved().live().headline(), "I fix bikes");
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_APPROVED);

  ASSERT_TRUE(log.Send(kExpert, Publish()).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_PUBLISHED);
  auto again = log.Send(kExpert, Publish());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "publishing a published profile changes nothing";
  ASSERT_TRUE(log.Send(kExpert, Unpublish()).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_UNPUBLISHED);
  ASSERT_TRUE(log.Send(kExpert, Publish()).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_PUBLISHED);
}

TEST(ProfileLifecycle, OneProfilePerExpert) {
  CatalogTestLog log;
  ASSERT_TRUE(log.Send(kExpert, Create(ValidContent())).ok());
  EXPECT_EQ(log.Send(kExpert, Create(ValidContent())).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(ProfileLifecycle, RejectedWithReasonThenFixedAndResubmitted) {
  CatalogTestLog log;
  ASSERT_TRUE(log.Send(kExpert, Create(ValidContent())).ok());
  ASSERT_TRUE(log.Send(kExpert, Submit()).ok());
  EXPECT_EQ(errors::FieldViolations(log.Send(kExpert, Reject("")).status())[0].field, "reason");
  ASSERT_TRUE(log.Send(kExpert, Reject("Say which bikes you know")).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_REJECTED);
  EXPECT_EQ(Profile(log).rejection_reason(), "Say which bikes you know");

  ASSERT_TRUE(log.Send(kExpert, Update(ValidContent("I fix road and city bikes"))).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_DRAFT);
  ASSERT_TRUE(log.Send(kExpert, Submit()).ok());
  EXPECT_EQ(Profile(log).rejection_reason(), "");
  ASSERT_TRUE(log.Send(kExpert, Approve()).ok());
  EXPECT_EQ(Profile(log).live().headline(), "I fix road and city bikes");
}

TEST(ProfileLifecycle, EditingWhileSubmittedWithdrawsTheSubmission) {
  CatalogTestLog log;
  ASSERT_TRUE(log.Send(kExpert, Create(ValidContent())).ok());
  ASSERT_TRUE(log.Send(kExpert, Submit()).ok());
  ASSERT_TRUE(log.Send(kExpert, Update(ValidContent("Changed my mind"))).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_DRAFT);
  EXPECT_EQ(log.Send(kExpert, Approve()).status().code(), absl::StatusCode::kFailedPrecondition)
      << "an admin must not approve text they have not been shown";
}

class ApprovedProfile : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(log.Send(kExpert, Create(ValidContent())).ok());
    ASSERT_TRUE(log.Send(kExpert, Submit()).ok());
    ASSERT_TRUE(log.Send(kExpert, Approve()).ok());
    ASSERT_TRUE(log.Send(kExpert, Publish()).ok());
  }
  CatalogTestLog log;
};

TEST_F(ApprovedProfile, PublicEditIsHeldWhileTheApprovedVersionStaysLive) {
  auto held = log.Send(kExpert, Update(ValidContent("Cheapest bikes in town!!!")));
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_TRUE((*held)[0].has_profile_change_held());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_PUBLISHED) << "stays in search";
  EXPECT_EQ(Profile(log).live().headline(), "I fix bikes");
  EXPECT_EQ(Profile(log).draft().headline(), "Cheapest bikes in town!!!");
  EXPECT_EQ(Profile(log).held_change(), v1::HELD_CHANGE_STATUS_IN_REVIEW);

  ASSERT_TRUE(log.Send(kExpert, Reject("No shouting, please")).ok());
  EXPECT_EQ(Profile(log).held_change(), v1::HELD_CHANGE_STATUS_REJECTED);
  EXPECT_EQ(Profile(log).live().headline(), "I fix bikes");
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_PUBLISHED);

  ASSERT_TRUE(log.Send(kExpert, Update(ValidContent("Friendly bike help"))).ok());
  auto approved = log.Send(kExpert, Approve());
  ASSERT_TRUE(approved.ok());
  ASSERT_TRUE((*approved)[0].has_profile_change_approved())
      << "not a second ExpertApproved: the role is granted once";
  EXPECT_EQ(Profile(log).live().headline(), "Friendly bike help");
  EXPECT_EQ(Profile(log).held_change(), v1::HELD_CHANGE_STATUS_NONE);
}

TEST_F(ApprovedProfile, PriceAndAvailabilityApplyAtOnce) {
  v1::ProfileContent content = ValidContent();
  content.mutable_price()->mutable_per_minute()->mutable_rate()->set_amount_minor(99);
  auto changed = log.Send(kExpert, Update(content));
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_TRUE((*changed)[0].has_live_terms_changed());
  EXPECT_EQ(Profile(log).live().price().per_minute().rate().amount_minor(), 99);
  EXPECT_EQ(Profile(log).held_change(), v1::HELD_CHANGE_STATUS_NONE);
}

TEST_F(ApprovedProfile, PriceAndTextTogetherSplitIntoLiveTermsAndAHeldChange) {
  v1::ProfileContent content = ValidContent("New headline");
  content.mutable_price()->mutable_per_minute()->mutable_rate()->set_amount_minor(120);
  auto changed = log.Send(kExpert, Update(content));
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->size(), 2u);
  EXPECT_EQ(Profile(log).live().price().per_minute().rate().amount_minor(), 120);
  EXPECT_EQ(Profile(log).live().headline(), "I fix bikes");
  EXPECT_EQ(Profile(log).draft().headline(), "New headline");
}

TEST_F(ApprovedProfile, APriceEditLeavesARejectedChangeRejected) {
  ASSERT_TRUE(log.Send(kExpert, Update(ValidContent("Cheapest bikes!!!"))).ok());
  ASSERT_TRUE(log.Send(kExpert, Reject("No shouting")).ok());
  v1::ProfileContent cheaper = ValidContent("Cheapest bikes!!!");  // the draft, new price
  cheaper.mutable_price()->mutable_per_minute()->mutable_rate()->set_amount_minor(90);
  auto changed = log.Send(kExpert, Update(cheaper));
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_TRUE((*changed)[0].has_live_terms_changed());
  EXPECT_EQ(Profile(log).held_change(), v1::HELD_CHANGE_STATUS_REJECTED);
  EXPECT_EQ(Profile(log).rejection_reason(), "No shouting");

  // Sent to review again as it is, on purpose.
  ASSERT_TRUE(log.Send(kExpert, Submit()).ok());
  EXPECT_EQ(Profile(log).held_change(), v1::HELD_CHANGE_STATUS_IN_REVIEW);
  EXPECT_EQ(Profile(log).live().headline(), "I fix bikes");
}

TEST_F(ApprovedProfile, RevertingTheTextWithdrawsTheHeldChange) {
  ASSERT_TRUE(log.Send(kExpert, Update(ValidContent("New headline"))).ok());
  ASSERT_TRUE(log.Send(kExpert, Update(ValidContent())).ok());
  EXPECT_EQ(Profile(log).held_change(), v1::HELD_CHANGE_STATUS_NONE);
  EXPECT_EQ(log.Send(kExpert, Approve()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ApprovedProfile, AnAdminsTakedownIsUndoneOnlyByAnAdmin) {
  EXPECT_EQ(errors::FieldViolations(log.Send(kExpert, Unpublish(true, "")).status())[0].field,
            "reason");
  ASSERT_TRUE(log.Send(kExpert, Unpublish(true, "Complaints about rudeness")).ok());
  EXPECT_EQ(log.Send(kExpert, Publish()).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(log.Send(kExpert, Publish(/*by_admin=*/true)).ok());
  EXPECT_EQ(Profile(log).status(), v1::PROFILE_STATUS_PUBLISHED);
}

v1::CatalogCommand CreateCategory(const std::string& id, const std::string& name,
                                  const std::string& parent = "") {
  v1::CatalogCommand command;
  command.mutable_create_category()->set_category_id(id);
  command.mutable_create_category()->set_name(name);
  command.mutable_create_category()->set_parent_id(parent);
  return command;
}

v1::CatalogCommand MoveCategory(const std::string& id, const std::string& parent) {
  v1::CatalogCommand command;
  command.mutable_move_category()->set_category_id(id);
  command.mutable_move_category()->set_parent_id(parent);
  return command;
}

v1::CatalogCommand RetireCategory(const std::string& id) {
  v1::CatalogCommand command;
  command.mutable_retire_category()->set_category_id(id);
  return command;
}

TEST(CategoryTree, SeedsTheDefaultTreeOnce) {
  CatalogTestLog log;
  v1::CatalogCommand seed;
  *seed.mutable_seed_categories() = DefaultCategories();
  auto seeded = log.Send(kCategoryTreeId, seed);
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  EXPECT_EQ(static_cast<int>(seeded->size()), DefaultCategories().categories_size());
  const auto& tree = log.StateOf(kCategoryTreeId).category_tree().categories();
  ASSERT_TRUE(tree.contains("bike-repair"));
  EXPECT_EQ(tree.at("bike-repair").parent_id(), "bikes-cars");
  EXPECT_TRUE(tree.contains("cooking") && tree.contains("computers") && tree.contains("music") &&
              tree.contains("fitness") && tree.contains("languages") &&
              tree.contains("home-garden"));
  auto again = log.Send(kCategoryTreeId, seed);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "a restart must not seed twice";
}

TEST(CategoryTree, CreateRenameMoveRetire) {
  CatalogTestLog log;
  ASSERT_TRUE(log.Send(kCategoryTreeId, CreateCategory("sports", "Sports")).ok());
  ASSERT_TRUE(log.Send(kCategoryTreeId, CreateCategory("climbing", "Climbing", "sports")).ok());
  ASSERT_TRUE(log.Send(kCategoryTreeId, CreateCategory("bouldering", "Bouldering", "climbing")).ok());
  EXPECT_EQ(log.Send(kCategoryTreeId, CreateCategory("climbing", "Again")).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(errors::FieldViolations(
                log.Send(kCategoryTreeId, CreateCategory("x-1", "Orphan", "nowhere")).status())[0]
                .field,
            "parent_id");
  EXPECT_EQ(errors::FieldViolations(
                log.Send(kCategoryTreeId, CreateCategory("Bad Slug", "Bad")).status())[0]
                .field,
            "category_id");
  EXPECT_EQ(errors::FieldViolations(
                log.Send(kCategoryTreeId, CreateCategory("climbing-2", "climbing", "sports"))
                    .status())[0]
                .field,
            "name")
      << "siblings have distinct names";

  v1::CatalogCommand rename;
  rename.mutable_rename_category()->set_category_id("climbing");
  rename.mutable_rename_category()->set_name("Climbing & bouldering");
  ASSERT_TRUE(log.Send(kCategoryTreeId, rename).ok());

  EXPECT_EQ(errors::FieldViolations(
                log.Send(kCategoryTreeId, MoveCategory("sports", "bouldering")).status())[0]
                .field,
            "parent_id")
      << "a category cannot move under its own descendant";
  ASSERT_TRUE(log.Send(kCategoryTreeId, MoveCategory("bouldering", "sports")).ok());

  EXPECT_EQ(log.Send(kCategoryTreeId, RetireCategory("sports")).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "its children are still active";
  ASSERT_TRUE(log.Send(kCategoryTreeId, RetireCategory("bouldering")).ok());
  ASSERT_TRUE(log.Send(kCategoryTreeId, RetireCategory("climbing")).ok());
  ASSERT_TRUE(log.Send(kCategoryTreeId, RetireCategory("sports")).ok());
  const auto& tree = log.StateOf(kCategoryTreeId).category_tree().categories();
  EXPECT_TRUE(tree.at("climbing").retired());
  EXPECT_EQ(tree.at("climbing").name(), "Climbing & bouldering") << "history is kept";
  EXPECT_EQ(log.Send(kCategoryTreeId, CreateCategory("climbing", "Climbing")).status().code(),
            absl::StatusCode::kAlreadyExists)
      << "a retired id is never reused";
  EXPECT_EQ(log.Send(kCategoryTreeId, CreateCategory("ice", "Ice", "sports")).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "nothing new goes under a retired category";
}

v1::SponsorProgramTerms Terms() {
  v1::SponsorProgramTerms terms;
  terms.set_name("Free bike help in May");
  terms.add_category_ids("bike-repair");
  terms.set_free_sessions_per_person(2);
  terms.set_max_minutes_per_session(20);
  *terms.mutable_active_from() = ToProtoTime(absl::FromUnixSeconds(1'790'000'000));
  return terms;
}

TEST(SponsorProgram, CreatePauseResumeUpdate) {
  CatalogTestLog log;
  const std::string id = std::string(kSponsorProgramPrefix) + "0190a1b2-0000-7000-8000-000000000001";
  v1::CatalogCommand create;
  create.mutable_create_sponsor_program()->set_sponsor_id(kExpert);
  *create.mutable_create_sponsor_program()->mutable_terms() = Terms();
  ASSERT_TRUE(log.Send(id, create).ok());
  EXPECT_EQ(log.Send(id, create).status().code(), absl::StatusCode::kAlreadyExists);

  v1::CatalogCommand pause;
  pause.mutable_pause_sponsor_program();
  ASSERT_TRUE(log.Send(id, pause).ok());
  EXPECT_TRUE(log.StateOf(id).sponsor_program().paused());
  EXPECT_TRUE(log.Send(id, pause)->empty());
  v1::CatalogCommand resume;
  resume.mutable_resume_sponsor_program();
  ASSERT_TRUE(log.Send(id, resume).ok());
  EXPECT_FALSE(log.StateOf(id).sponsor_program().paused());

  v1::CatalogCommand update;
  *update.mutable_update_sponsor_program()->mutable_terms() = Terms();
  update.mutable_update_sponsor_program()->mutable_terms()->set_free_sessions_per_person(0);
  std::vector<errors::FieldViolation> violations =
      errors::FieldViolations(log.Send(id, update).status());
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field, "terms.free_sessions_per_person");
}

TEST(Erasure, ADeletedExpertsProfileLeavesSearchLosesItsTextAndNeverChangesAgain) {
  CatalogReadModel read_model;
  CatalogTestLog log(&read_model);
  ASSERT_TRUE(log.Send(kExpert, Create(ValidContent())).ok());
  ASSERT_TRUE(log.Send(kExpert, Submit()).ok());
  ASSERT_TRUE(log.Send(kExpert, Approve()).ok());
  ASSERT_TRUE(log.Send(kExpert, Publish()).ok());
  ASSERT_EQ(read_model.published(), 1u);

  v1::CatalogCommand erase;
  erase.mutable_erase_profile();
  EXPECT_EQ(log.Send(kExpert, erase, kExpert).status().code(),
            absl::StatusCode::kPermissionDenied)
      << "a user's command cannot erase a profile";
  // Sent without an actor: from Helpline itself, as catalog's reactor sends it.
  absl::StatusOr<std::vector<v1::CatalogEvent>> erased = log.Send(kExpert, erase);
  ASSERT_TRUE(erased.ok()) << erased.status();
  ASSERT_EQ(erased->size(), 2u);
  EXPECT_TRUE((*erased)[0].has_profile_unpublished()) << "consumers that know no erasure unpublish";
  EXPECT_TRUE((*erased)[1].has_profile_erased());

  const v1::ProfileState& profile = Profile(log);
  EXPECT_TRUE(profile.erased());
  EXPECT_FALSE(profile.has_live());
  EXPECT_FALSE(profile.has_draft()) << "no text is kept in the state (nor its snapshots)";
  EXPECT_EQ(read_model.published(), 0u);
  EXPECT_FALSE(read_model.Profile(kExpert, log.now).has_value()) << "not even the owner sees it";

  EXPECT_EQ(log.Send(kExpert, Update(ValidContent("Back again"))).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log.Send(kExpert, Publish(true)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log.Send(kExpert, erase)->empty()) << "erasing twice changes nothing";
  const std::string never_expert = "0190a1b2-0000-7000-8000-00000000000f";
  absl::StatusOr<std::vector<v1::CatalogEvent>> tombstone = log.Send(never_expert, erase);
  ASSERT_TRUE(tombstone.ok()) << tombstone.status();
  ASSERT_EQ(tombstone->size(), 1u);
  EXPECT_TRUE((*tombstone)[0].has_profile_erased()) << "an account without a profile is erased too";
  EXPECT_EQ(log.Send(never_expert, Create(ValidContent())).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "a profile created after the deletion is refused";
  EXPECT_FALSE(read_model.Profile(never_expert, log.now).has_value());
}

TEST(Erasure, ADeletedSponsorsProgramsCloseForGood) {
  CatalogReadModel read_model;
  CatalogTestLog log(&read_model);
  const std::string id = std::string(kSponsorProgramPrefix) + "0190a1b2-0000-7000-8000-000000000002";
  v1::CatalogCommand create;
  create.mutable_create_sponsor_program()->set_sponsor_id(kExpert);
  *create.mutable_create_sponsor_program()->mutable_terms() = Terms();
  ASSERT_TRUE(log.Send(id, create).ok());

  v1::CatalogCommand close;
  close.mutable_close_sponsor_program()->set_reason("the sponsor's account was deleted");
  EXPECT_EQ(log.Send(id, close, kExpert).status().code(), absl::StatusCode::kPermissionDenied);
  absl::StatusOr<std::vector<v1::CatalogEvent>> closed = log.Send(id, close);
  ASSERT_TRUE(closed.ok()) << closed.status();
  ASSERT_EQ(closed->size(), 1u);
  EXPECT_TRUE((*closed)[0].sponsor_program_paused().closed())
      << "a pause to whoever knows only pauses: payments pays for no new session";
  std::optional<v1::SponsorProgram> program = read_model.Program(id, log.now);
  ASSERT_TRUE(program.has_value());
  EXPECT_EQ(program->status(), v1::SPONSOR_PROGRAM_STATUS_CLOSED);
  EXPECT_FALSE(program->in_effect());

  v1::CatalogCommand resume;
  resume.mutable_resume_sponsor_program();
  EXPECT_EQ(log.Send(id, resume).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log.Send(id, close)->empty());
}

TEST(Erasure, AnAccountDeletedInIdentityErasesItsProfileAndClosesItsPrograms) {
  identity::v1::IdentityEvent deleted;
  deleted.mutable_meta()->set_aggregate_id(kExpert);
  deleted.mutable_account_deleted();
  std::vector<std::string> asked;
  std::vector<v1::CatalogCommand> commands =
      CatalogFromIdentity(deleted, [&](const std::string& user_id) {
        asked.push_back(user_id);
        return std::vector<std::string>{"program:a", "program:b"};
      });
  EXPECT_THAT(asked, ElementsAre(kExpert));
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_EQ(commands[0].meta().aggregate_id(), kExpert);
  EXPECT_TRUE(commands[0].has_erase_profile());
  EXPECT_EQ(commands[1].meta().aggregate_id(), "program:a");
  EXPECT_TRUE(commands[1].has_close_sponsor_program());
  EXPECT_EQ(commands[2].meta().aggregate_id(), "program:b");

  identity::v1::IdentityEvent registered;
  registered.mutable_meta()->set_aggregate_id(kExpert);
  registered.mutable_user_registered();
  EXPECT_TRUE(CatalogFromIdentity(registered, [](const std::string&) {
                return std::vector<std::string>{"program:a"};
              }).empty());
}

}  // namespace
}  // namespace helpline::catalog
