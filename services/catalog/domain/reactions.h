#pragma once

#include <functional>
#include <string>
#include <vector>

#include "helpline/catalog/v1/commands.pb.h"
#include "helpline/identity/v1/events.pb.h"

namespace helpline::catalog {

// An account deleted in identity leaves nothing of itself live in catalog:
// its profile is unpublished and erased, and the sponsor programs it created
// (`programs_of` lists their ids) close for good.
std::vector<v1::CatalogCommand> CatalogFromIdentity(
    const identity::v1::IdentityEvent& event,
    const std::function<std::vector<std::string>(const std::string& user_id)>& programs_of);

}  // namespace helpline::catalog
