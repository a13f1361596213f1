#include "services/identity/domain/identity_domain.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::identity {
namespace {

using v1::IdentityCommand;
using v1::IdentityEvent;
using v1::IdentityState;

using Events = std::vector<IdentityEvent>;

bool Sealed(const v1::SealedText& text) {
  return !text.key_id().empty() && !text.nonce().empty() && !text.ciphertext().empty();
}

const std::vector<std::string>& KnownRoles() {
  static const std::vector<std::string> roles = {"person", "sponsor", "expert", "admin"};
  return roles;
}

absl::StatusOr<Events> DecideClaim(const v1::EmailClaimState& claim, int64_t version,
                                   const IdentityCommand& command,
                                   const es::DecideContext& context) {
  IdentityEvent event;
  bool held = version > 0 && !claim.user_id().empty();
  switch (command.body_case()) {
    case IdentityCommand::kClaimEmail: {
      const std::string& user_id = command.claim_email().user_id();
      if (user_id.empty()) return errors::InvalidField("claim_email.user_id", "is required");
      if (held && claim.user_id() == user_id) return Events{};
      bool stale = held && !claim.confirmed() &&
                   context.now - FromProtoTime(claim.claimed_at()) > kPendingClaimTimeout;
      if (held && !stale) {
        return absl::AlreadyExistsError("an account with this email already exists");
      }
      event.mutable_email_claimed()->set_user_id(user_id);
      return Events{event};
    }
    case IdentityCommand::kConfirmEmailClaim: {
      const std::string& user_id = command.confirm_email_claim().user_id();
      if (!held || claim.user_id() != user_id) {
        return absl::FailedPreconditionError("the email is not claimed by this user");
      }
      if (claim.confirmed()) return Events{};
      event.mutable_email_claim_confirmed()->set_user_id(user_id);
      return Events{event};
    }
    case IdentityCommand::kReleaseEmailClaim: {
      const std::string& user_id = command.release_email_claim().user_id();
      if (!held || claim.user_id() != user_id) return Events{};
      event.mutable_email_claim_released()->set_user_id(user_id);
      return Events{event};
    }
    default:
      return errors::InvalidField("body", "this command is not for an email claim");
  }
}

absl::StatusOr<Events> Register(const v1::CreateUser& create) {
  IdentityEvent event;
  errors::Validator validator;
  validator.Check(Sealed(create.email()), "create_user.email", "must be sealed");
  validator.Check(Sealed(create.display_name()), "create_user.display_name", "must be sealed");
  validator.Check(Sealed(create.password_hash()), "create_user.password_hash", "must be sealed");
  validator.Check(create.account_type() != v1::ACCOUNT_TYPE_UNSPECIFIED,
                  "create_user.account_type", "is required");
  validator.Check(IsEmailClaimId(create.email_claim_id()), "create_user.email_claim_id",
                  "must name an email claim");
  for (const std::string& role : create.extra_roles()) {
    validator.Check(role == "admin", "create_user.extra_roles", "only \"admin\" may be added");
  }
  if (absl::Status s = validator.Finish(); !s.ok()) return s;
  v1::UserRegistered& registered = *event.mutable_user_registered();
  *registered.mutable_email() = create.email();
  *registered.mutable_display_name() = create.display_name();
  *registered.mutable_password_hash() = create.password_hash();
  registered.set_account_type(create.account_type());
  registered.add_roles(create.account_type() == v1::ACCOUNT_TYPE_ORGANISATION ? "sponsor"
                                                                             : "person");
  for (const std::string& role : create.extra_roles()) registered.add_roles(role);
  registered.set_email_claim_id(create.email_claim_id());
  return Events{event};
}

absl::StatusOr<Events> IssueRefreshToken(const v1::UserState& user,
                                         const v1::IssueRefreshToken& issue, absl::Time now) {
  IdentityEvent event;
  errors::Validator validator;
  validator.Check(!issue.family_id().empty(), "issue_refresh_token.family_id", "is required");
  validator.Check(!issue.token_hash().empty(), "issue_refresh_token.token_hash", "is required");
  validator.Check(FromProtoTime(issue.expires_at()) > now,
                  "issue_refresh_token.expires_at", "must be in the future");
  if (absl::Status s = validator.Finish(); !s.ok()) return s;
  if (user.refresh_families().contains(issue.family_id())) {
    return absl::AlreadyExistsError("this session exists already");
  }
  v1::RefreshTokenIssued& issued = *event.mutable_refresh_token_issued();
  issued.set_family_id(issue.family_id());
  issued.set_token_hash(issue.token_hash());
  *issued.mutable_expires_at() = issue.expires_at();
  return Events{event};
}

absl::StatusOr<Events> RotateRefreshToken(const v1::UserState& user,
                                          const v1::RotateRefreshToken& rotate, absl::Time now) {
  IdentityEvent event;
  auto family = user.refresh_families().find(rotate.family_id());
  if (family == user.refresh_families().end()) {
    return absl::UnauthenticatedError("the session has ended; sign in again");
  }
  const v1::RefreshFamily& session = family->second;
  if (rotate.presented_hash() == session.current_hash()) {
    if (now > FromProtoTime(session.expires_at())) {
      return absl::UnauthenticatedError("the session has expired; sign in again");
    }
    if (rotate.new_hash().empty()) {
      return errors::InvalidField("rotate_refresh_token.new_hash", "is required");
    }
    v1::RefreshTokenRotated& rotated = *event.mutable_refresh_token_rotated();
    rotated.set_family_id(rotate.family_id());
    rotated.set_previous_hash(rotate.presented_hash());
    rotated.set_new_hash(rotate.new_hash());
    *rotated.mutable_expires_at() = rotate.expires_at();
    return Events{event};
  }
  const auto& spent = session.spent_hashes();
  if (std::find(spent.begin(), spent.end(), rotate.presented_hash()) != spent.end()) {
    // A spent token came back: someone else has a copy. End the session.
    v1::RefreshFamilyRevoked& revoked = *event.mutable_refresh_family_revoked();
    revoked.set_family_id(rotate.family_id());
    revoked.set_reason("reuse");
    return Events{event};
  }
  return absl::UnauthenticatedError("not a refresh token of this session");
}

absl::StatusOr<Events> RevokeRefreshFamily(const v1::UserState& user,
                                           const v1::RevokeRefreshFamily& revoke) {
  IdentityEvent event;
  auto family = user.refresh_families().find(revoke.family_id());
  if (family == user.refresh_families().end()) return Events{};  // ended already
  const auto& spent = family->second.spent_hashes();
  bool holds = revoke.presented_hash() == family->second.current_hash() ||
               std::find(spent.begin(), spent.end(), revoke.presented_hash()) != spent.end();
  if (!holds) return absl::UnauthenticatedError("not a refresh token of this session");
  v1::RefreshFamilyRevoked& revoked = *event.mutable_refresh_family_revoked();
  revoked.set_family_id(revoke.family_id());
  revoked.set_reason("logout");
  return Events{event};
}

absl::StatusOr<Events> DecideUser(const v1::UserState& user, int64_t version,
                                  const IdentityCommand& command,
                                  const es::DecideContext& context) {
  IdentityEvent event;
  if (command.has_claim_email() || command.has_confirm_email_claim() ||
      command.has_release_email_claim()) {
    return errors::InvalidField("body", "this command is not for a user");
  }
  if (command.body_case() == IdentityCommand::kCreateUser) {
    if (version > 0) return absl::AlreadyExistsError("this account exists already");
    return Register(command.create_user());
  }
  if (version == 0 || user.deleted()) return absl::NotFoundError("no such account");

  switch (command.body_case()) {
    case IdentityCommand::kIssueRefreshToken:
      return IssueRefreshToken(user, command.issue_refresh_token(), context.now);
    case IdentityCommand::kRotateRefreshToken:
      return RotateRefreshToken(user, command.rotate_refresh_token(), context.now);
    case IdentityCommand::kRevokeRefreshFamily:
      return RevokeRefreshFamily(user, command.revoke_refresh_family());
    case IdentityCommand::kChangePassword:
      if (!Sealed(command.change_password().password_hash())) {
        return errors::InvalidField("change_password.password_hash", "must be sealed");
      }
      *event.mutable_password_changed()->mutable_password_hash() =
          command.change_password().password_hash();
      return Events{event};
    case IdentityCommand::kGrantRole: {
      const std::string& role = command.grant_role().role();
      if (std::find(KnownRoles().begin(), KnownRoles().end(), role) == KnownRoles().end()) {
        return errors::InvalidField("grant_role.role", "must be person, sponsor, expert or admin");
      }
      if (std::find(user.roles().begin(), user.roles().end(), role) != user.roles().end()) {
        return Events{};
      }
      event.mutable_role_granted()->set_role(role);
      return Events{event};
    }
    case IdentityCommand::kDeleteUser:
      event.mutable_account_deleted()->set_email_claim_id(user.email_claim_id());
      return Events{event};
    default:
      return errors::InvalidField("body", "this command is not for a user");
  }
}

}  // namespace

bool IsEmailClaimId(const std::string& aggregate_id) {
  return absl::StartsWith(aggregate_id, kEmailClaimPrefix) &&
         aggregate_id.size() > sizeof(kEmailClaimPrefix) - 1;
}

absl::StatusOr<std::vector<IdentityEvent>> IdentityDomain::Decide(
    const IdentityState& state, const IdentityCommand& command, const es::DecideContext& context) {
  if (command.body_case() == IdentityCommand::BODY_NOT_SET) {
    return errors::InvalidField("body", "a command is required");
  }
  if (IsEmailClaimId(context.aggregate_id)) {
    return DecideClaim(state.email_claim(), context.version, command, context);
  }
  return DecideUser(state.user(), context.version, command, context);
}

void IdentityDomain::Apply(IdentityState& state, const IdentityEvent& event) {
  absl::Time at = FromProtoTime(event.meta().occurred_at());
  switch (event.body_case()) {
    case IdentityEvent::kEmailClaimed: {
      v1::EmailClaimState& claim = *state.mutable_email_claim();
      claim.set_user_id(event.email_claimed().user_id());
      claim.set_confirmed(false);
      *claim.mutable_claimed_at() = event.meta().occurred_at();
      break;
    }
    case IdentityEvent::kEmailClaimConfirmed:
      state.mutable_email_claim()->set_confirmed(true);
      break;
    case IdentityEvent::kEmailClaimReleased:
      state.mutable_email_claim()->Clear();
      break;
    case IdentityEvent::kUserRegistered: {
      const v1::UserRegistered& registered = event.user_registered();
      v1::UserState& user = *state.mutable_user();
      *user.mutable_email() = registered.email();
      *user.mutable_display_name() = registered.display_name();
      *user.mutable_password_hash() = registered.password_hash();
      user.set_account_type(registered.account_type());
      *user.mutable_roles() = registered.roles();
      user.set_email_claim_id(registered.email_claim_id());
      *user.mutable_created_at() = event.meta().occurred_at();
      break;
    }
    case IdentityEvent::kRefreshTokenIssued: {
      auto& families = *state.mutable_user()->mutable_refresh_families();
      // Sessions past their expiry are gone for good: forget them.
      for (auto it = families.begin(); it != families.end();) {
        it = FromProtoTime(it->second.expires_at()) < at ? families.erase(it) : std::next(it);
      }
      v1::RefreshFamily& family = families[event.refresh_token_issued().family_id()];
      family.set_current_hash(event.refresh_token_issued().token_hash());
      *family.mutable_expires_at() = event.refresh_token_issued().expires_at();
      break;
    }
    case IdentityEvent::kRefreshTokenRotated: {
      const v1::RefreshTokenRotated& rotated = event.refresh_token_rotated();
      v1::RefreshFamily& family =
          (*state.mutable_user()->mutable_refresh_families())[rotated.family_id()];
      family.add_spent_hashes(rotated.previous_hash());
      if (family.spent_hashes_size() > kSpentHashesKept) {
        family.mutable_spent_hashes()->erase(family.mutable_spent_hashes()->begin());
      }
      family.set_current_hash(rotated.new_hash());
      *family.mutable_expires_at() = rotated.expires_at();
      break;
    }
    case IdentityEvent::kRefreshFamilyRevoked:
      state.mutable_user()->mutable_refresh_families()->erase(
          event.refresh_family_revoked().family_id());
      break;
    case IdentityEvent::kPasswordChanged:
      *state.mutable_user()->mutable_password_hash() = event.password_changed().password_hash();
      state.mutable_user()->mutable_refresh_families()->clear();
      break;
    case IdentityEvent::kRoleGranted:
      state.mutable_user()->add_roles(event.role_granted().role());
      break;
    case IdentityEvent::kAccountDeleted: {
      v1::UserState& user = *state.mutable_user();
      std::string claim = user.email_claim_id();
      user.Clear();
      user.set_deleted(true);
      user.set_email_claim_id(claim);
      break;
    }
    case IdentityEvent::BODY_NOT_SET:
      break;
  }
}

}  // namespace helpline::identity
