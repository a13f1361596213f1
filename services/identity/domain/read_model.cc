#include "services/identity/domain/read_model.h"

#include "services/runtime/core/proto_time.h"

namespace helpline::identity {

void IdentityReadModel::Apply(const v1::IdentityEvent& event) {
  const std::string& id = event.meta().aggregate_id();
  absl::MutexLock lock(&mutex_);
  auto user = users_.find(id);
  switch (event.body_case()) {
    case v1::IdentityEvent::kUserRegistered: {
      const v1::UserRegistered& registered = event.user_registered();
      UserView view;
      view.user_id = id;
      view.email = registered.email();
      view.display_name = registered.display_name();
      view.password_hash = registered.password_hash();
      view.account_type = registered.account_type();
      view.roles.assign(registered.roles().begin(), registered.roles().end());
      view.created_at = FromProtoTime(event.meta().occurred_at());
      view.email_claim_id = registered.email_claim_id();
      by_claim_[view.email_claim_id] = id;
      users_[id] = std::move(view);
      break;
    }
    case v1::IdentityEvent::kRefreshTokenIssued:
      if (user != users_.end()) user->second.live_sessions.insert(event.refresh_token_issued().family_id());
      break;
    case v1::IdentityEvent::kRefreshFamilyRevoked:
      if (user != users_.end()) user->second.live_sessions.erase(event.refresh_family_revoked().family_id());
      break;
    case v1::IdentityEvent::kPasswordChanged:
      if (user != users_.end()) {
        user->second.password_hash = event.password_changed().password_hash();
        user->second.live_sessions.clear();
      }
      break;
    case v1::IdentityEvent::kRoleGranted:
      if (user != users_.end()) user->second.roles.push_back(event.role_granted().role());
      break;
    case v1::IdentityEvent::kAccountDeleted:
      if (user != users_.end()) {
        auto claim = by_claim_.find(user->second.email_claim_id);
        if (claim != by_claim_.end() && claim->second == id) by_claim_.erase(claim);
        users_.erase(user);
      }
      break;
    default:
      break;
  }
}

std::optional<IdentityReadModel::UserView> IdentityReadModel::FindUser(const std::string& user_id) {
  absl::MutexLock lock(&mutex_);
  auto found = users_.find(user_id);
  if (found == users_.end()) return std::nullopt;
  return found->second;
}

std::optional<IdentityReadModel::UserView> IdentityReadModel::FindByEmailClaim(
    const std::string& claim_id) {
  absl::MutexLock lock(&mutex_);
  auto claim = by_claim_.find(claim_id);
  if (claim == by_claim_.end()) return std::nullopt;
  auto found = users_.find(claim->second);
  if (found == users_.end()) return std::nullopt;
  return found->second;
}

size_t IdentityReadModel::users() {
  absl::MutexLock lock(&mutex_);
  return users_.size();
}

}  // namespace helpline::identity
