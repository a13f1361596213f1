#include "services/catalog/domain/reactions.h"

namespace helpline::catalog {

std::vector<v1::CatalogCommand> CatalogFromIdentity(
    const identity::v1::IdentityEvent& event,
    const std::function<std::vector<std::string>(const std::string& user_id)>& programs_of) {
  if (!event.has_account_deleted()) return {};
  const std::string& user_id = event.meta().aggregate_id();
  std::vector<v1::CatalogCommand> commands;
  v1::CatalogCommand erase;
  erase.mutable_meta()->set_aggregate_id(user_id);
  erase.mutable_erase_profile();
  commands.push_back(std::move(erase));
  for (const std::string& program_id : programs_of(user_id)) {
    v1::CatalogCommand close;
    close.mutable_meta()->set_aggregate_id(program_id);
    close.mutable_close_sponsor_program()->set_reason("the sponsor's account was deleted");
    commands.push_back(std::move(close));
  }
  return commands;
}

}  // namespace helpline::catalog
