#include "services/identity/domain/reactions.h"

namespace helpline::identity {

std::vector<v1::IdentityCommand> ClaimFollowsAccount(const v1::IdentityEvent& event) {
  v1::IdentityCommand command;
  const std::string& user_id = event.meta().aggregate_id();
  if (event.has_user_registered()) {
    command.mutable_meta()->set_aggregate_id(event.user_registered().email_claim_id());
    command.mutable_confirm_email_claim()->set_user_id(user_id);
    return {command};
  }
  if (event.has_account_deleted()) {
    command.mutable_meta()->set_aggregate_id(event.account_deleted().email_claim_id());
    command.mutable_release_email_claim()->set_user_id(user_id);
    return {command};
  }
  return {};
}

std::vector<v1::IdentityCommand> ExpertGetsRole(const catalog::v1::CatalogEvent& event) {
  if (!event.has_expert_approved()) return {};
  v1::IdentityCommand command;
  command.mutable_meta()->set_aggregate_id(event.meta().aggregate_id());
  command.mutable_grant_role()->set_role("expert");
  return {command};
}

}  // namespace helpline::identity
