#include "services/identity/domain/identity_domain.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::identity {
namespace {

using v1::IdentityCommand;
using v1::IdentityEvent;
using v1::IdentityState;

// One aggregate driven through Decide and Apply as the processor would.
class Aggregate {
 public:
  explicit Aggregate(std::string id) : id_(std::move(id)) {}

  absl::Status Run(const IdentityCommand& command) {
    es::DecideContext context{now, id_, version_, &command.meta()};
    absl::StatusOr<std::vector<IdentityEvent>> events =
        IdentityDomain::Decide(state_, command, context);
    if (!events.ok()) return events.status();
    last_events = *events;
    for (IdentityEvent& event : *events) {
      event.mutable_meta()->set_aggregate_version(++version_);
      *event.mutable_meta()->mutable_occurred_at() = ToProtoTime(now);
      IdentityDomain::Apply(state_, event);
    }
    return absl::OkStatus();
  }
  const IdentityState& state() const { return state_; }
  int64_t version() const { return version_; }

  absl::Time now = absl::FromUnixSeconds(1800000000);
  std::vector<IdentityEvent> last_events;

 private:
  std::string id_;
  IdentityState state_;
  int64_t version_ = 0;
};

v1::SealedText Sealed(const std::string& what) {
  v1::SealedText text;
  text.set_key_id("u1/k1");
  text.set_nonce("nonce-" + what);
  text.set_ciphertext("cipher-" + what);
  return text;
}

IdentityCommand Claim(const std::string& user) {
  IdentityCommand command;
  command.mutable_claim_email()->set_user_id(user);
  return command;
}

IdentityCommand Create(v1::AccountType type = v1::ACCOUNT_TYPE_PERSON) {
  IdentityCommand command;
  v1::CreateUser& create = *command.mutable_create_user();
  *create.mutable_email() = Sealed("email");
  *create.mutable_display_name() = Sealed("name");
  *create.mutable_password_hash() = Sealed("hash");
  create.set_account_type(type);
  create.set_email_claim_id("email:abc");
  return command;
}

IdentityCommand Issue(const std::string& family, const std::string& hash, absl::Time expires) {
  IdentityCommand command;
  command.mutable_issue_refresh_token()->set_family_id(family);
  command.mutable_issue_refresh_token()->set_token_hash(hash);
  *command.mutable_issue_refresh_token()->mutable_expires_at() = ToProtoTime(expires);
  return command;
}

IdentityCommand Rotate(const std::string& family, const std::string& presented,
                       const std::string& next, absl::Time expires) {
  IdentityCommand command;
  v1::RotateRefreshToken& rotate = *command.mutable_rotate_refresh_token();
  rotate.set_family_id(family);
  rotate.set_presented_hash(presented);
  rotate.set_new_hash(next);
  *rotate.mutable_expires_at() = ToProtoTime(expires);
  return command;
}

TEST(EmailClaimTest, OneAccountPerEmail) {
  Aggregate claim("email:abc");
  ASSERT_TRUE(claim.Run(Claim("u1")).ok());
  EXPECT_TRUE(claim.Run(Claim("u1")).ok()) << "the same user again is a no-op";
  EXPECT_TRUE(claim.last_events.empty());
  EXPECT_EQ(claim.Run(Claim("u2")).code(), absl::StatusCode::kAlreadyExists);

  IdentityCommand confirm;
  confirm.mutable_confirm_email_claim()->set_user_id("u1");
  ASSERT_TRUE(claim.Run(confirm).ok());
  claim.now += kPendingClaimTimeout * 2;
  EXPECT_EQ(claim.Run(Claim("u2")).code(), absl::StatusCode::kAlreadyExists)
      << "a confirmed claim never goes stale";

  IdentityCommand release;
  release.mutable_release_email_claim()->set_user_id("u1");
  ASSERT_TRUE(claim.Run(release).ok());
  EXPECT_TRUE(claim.Run(Claim("u2")).ok()) << "free again after the account was deleted";
  EXPECT_EQ(claim.state().email_claim().user_id(), "u2");
}

TEST(EmailClaimTest, PendingClaimIsTakenOverWhenStale) {
  Aggregate claim("email:abc");
  ASSERT_TRUE(claim.Run(Claim("u1")).ok());
  claim.now += kPendingClaimTimeout - absl::Seconds(1);
  EXPECT_EQ(claim.Run(Claim("u2")).code(), absl::StatusCode::kAlreadyExists);
  claim.now += absl::Seconds(2);
  EXPECT_TRUE(claim.Run(Claim("u2")).ok());
  EXPECT_EQ(claim.state().email_claim().user_id(), "u2");
}

TEST(UserTest, CreateGivesRolesByAccountTypeAndValidates) {
  Aggregate person("u1");
  ASSERT_TRUE(person.Run(Create()).ok());
  EXPECT_THAT(person.state().user().roles(), ::testing::ElementsAre("person"));
  EXPECT_EQ(person.Run(Create()).code(), absl::StatusCode::kAlreadyExists);

  Aggregate company("u2");
  ASSERT_TRUE(company.Run(Create(v1::ACCOUNT_TYPE_ORGANISATION)).ok());
  EXPECT_THAT(company.state().user().roles(), ::testing::ElementsAre("sponsor"));

  IdentityCommand bad = Create(v1::ACCOUNT_TYPE_UNSPECIFIED);
  bad.mutable_create_user()->clear_email();
  bad.mutable_create_user()->add_extra_roles("expert");
  Aggregate invalid("u3");
  absl::Status status = invalid.Run(bad);
  std::vector<std::string> fields;
  for (const auto& violation : errors::FieldViolations(status)) fields.push_back(violation.field);
  EXPECT_THAT(fields, ::testing::ElementsAre("create_user.email", "create_user.account_type",
                                             "create_user.extra_roles"));
}

TEST(UserTest, RefreshTokenRotationAndReuseDetection) {
  Aggregate user("u1");
  ASSERT_TRUE(user.Run(Create()).ok());
  absl::Time expires = user.now + absl::Hours(24);
  ASSERT_TRUE(user.Run(Issue("f1", "h1", expires)).ok());
  ASSERT_TRUE(user.Run(Rotate("f1", "h1", "h2", expires)).ok());
  EXPECT_EQ(user.state().user().refresh_families().at("f1").current_hash(), "h2");
  EXPECT_EQ(user.Run(Rotate("f1", "bogus", "h3", expires)).code(),
            absl::StatusCode::kUnauthenticated);

  // h1 was spent: presenting it again ends the session for everyone.
  ASSERT_TRUE(user.Run(Rotate("f1", "h1", "h3", expires)).ok());
  ASSERT_EQ(user.last_events.size(), 1u);
  EXPECT_EQ(user.last_events[0].refresh_family_revoked().reason(), "reuse");
  EXPECT_FALSE(user.state().user().refresh_families().contains("f1"));
  EXPECT_EQ(user.Run(Rotate("f1", "h2", "h3", expires)).code(),
            absl::StatusCode::kUnauthenticated)
      << "the legitimate holder is signed out too";
}

TEST(UserTest, ExpiredSessionCannotBeRefreshed) {
  Aggregate user("u1");
  ASSERT_TRUE(user.Run(Create()).ok());
  ASSERT_TRUE(user.Run(Issue("f1", "h1", user.now + absl::Hours(1))).ok());
  user.now += absl::Hours(2);
  EXPECT_EQ(user.Run(Rotate("f1", "h1", "h2", user.now + absl::Hours(1))).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(UserTest, LogoutNeedsATokenOfTheSession) {
  Aggregate user("u1");
  ASSERT_TRUE(user.Run(Create()).ok());
  ASSERT_TRUE(user.Run(Issue("f1", "h1", user.now + absl::Hours(1))).ok());
  IdentityCommand logout;
  logout.mutable_revoke_refresh_family()->set_family_id("f1");
  logout.mutable_revoke_refresh_family()->set_presented_hash("wrong");
  EXPECT_EQ(user.Run(logout).code(), absl::StatusCode::kUnauthenticated);
  logout.mutable_revoke_refresh_family()->set_presented_hash("h1");
  ASSERT_TRUE(user.Run(logout).ok());
  EXPECT_TRUE(user.state().user().refresh_families().empty());
  EXPECT_TRUE(user.Run(logout).ok()) << "logging out twice is fine";
}

TEST(UserTest, PasswordChangeEndsEverySession) {
  Aggregate user("u1");
  ASSERT_TRUE(user.Run(Create()).ok());
  ASSERT_TRUE(user.Run(Issue("f1", "h1", user.now + absl::Hours(1))).ok());
  ASSERT_TRUE(user.Run(Issue("f2", "h2", user.now + absl::Hours(1))).ok());
  IdentityCommand change;
  *change.mutable_change_password()->mutable_password_hash() = Sealed("new");
  ASSERT_TRUE(user.Run(change).ok());
  EXPECT_TRUE(user.state().user().refresh_families().empty());
  EXPECT_EQ(user.state().user().password_hash().ciphertext(), "cipher-new");
}

TEST(UserTest, RolesAreGrantedOnce) {
  Aggregate user("u1");
  ASSERT_TRUE(user.Run(Create()).ok());
  IdentityCommand grant;
  grant.mutable_grant_role()->set_role("expert");
  ASSERT_TRUE(user.Run(grant).ok());
  ASSERT_TRUE(user.Run(grant).ok());
  EXPECT_THAT(user.state().user().roles(), ::testing::ElementsAre("person", "expert"));
  grant.mutable_grant_role()->set_role("superuser");
  EXPECT_EQ(user.Run(grant).code(), absl::StatusCode::kInvalidArgument);
}

TEST(UserTest, DeletionForgetsThePiiAndEndsTheAccount) {
  Aggregate user("u1");
  ASSERT_TRUE(user.Run(Create()).ok());
  IdentityCommand remove;
  remove.mutable_delete_user();
  ASSERT_TRUE(user.Run(remove).ok());
  EXPECT_EQ(user.last_events[0].account_deleted().email_claim_id(), "email:abc");
  EXPECT_TRUE(user.state().user().deleted());
  EXPECT_FALSE(user.state().user().has_email());
  EXPECT_FALSE(user.state().user().has_password_hash());
  EXPECT_EQ(user.Run(Issue("f1", "h1", user.now + absl::Hours(1))).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(user.Run(remove).code(), absl::StatusCode::kNotFound);
}

TEST(UserTest, CommandsForAnAccountThatDoesNotExist) {
  Aggregate nobody("u9");
  EXPECT_EQ(nobody.Run(Issue("f1", "h1", nobody.now + absl::Hours(1))).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(nobody.Run(IdentityCommand()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(nobody.Run(Claim("u1")).code(), absl::StatusCode::kInvalidArgument)
      << "a claim command sent to a user";
}

}  // namespace
}  // namespace helpline::identity
