#pragma once

#include <vector>

#include "helpline/catalog/v1/events.pb.h"
#include "helpline/identity/v1/commands.pb.h"
#include "helpline/identity/v1/events.pb.h"

// Identity reacting to events, its own and catalog's. Pure.
namespace helpline::identity {

// UserRegistered confirms the email claim; AccountDeleted releases it.
std::vector<v1::IdentityCommand> ClaimFollowsAccount(const v1::IdentityEvent& event);

// Catalog's ExpertApproved (an expert's first approved profile) grants the
// user the role "expert".
std::vector<v1::IdentityCommand> ExpertGetsRole(const catalog::v1::CatalogEvent& event);

}  // namespace helpline::identity
