#include "services/catalog/domain/catalog_domain.h"

#include "services/runtime/core/errors.h"

namespace helpline::catalog {

using v1::CatalogCommand;
using v1::CatalogEvent;
using v1::CatalogState;

absl::Status OnlyHelplineSends() {
  return absl::PermissionDeniedError("only Helpline itself sends this command");
}

absl::StatusOr<std::vector<CatalogEvent>> CatalogDomain::Decide(const CatalogState& state,
                                                                const CatalogCommand& command,
                                                                const es::DecideContext& context) {
  if (command.body_case() == CatalogCommand::BODY_NOT_SET) {
    return errors::InvalidField("body", "a command is required");
  }
  if (context.aggregate_id == kCategoryTreeId) return DecideTree(state.category_tree(), command);
  if (IsSponsorProgramId(context.aggregate_id)) {
    return DecideProgram(state.sponsor_program(), context.version, command, context);
  }
  return DecideProfile(state.profile(), context.version, command, context);
}

void CatalogDomain::Apply(CatalogState& state, const CatalogEvent& event) {
  const std::string& id = event.meta().aggregate_id();
  if (id == kCategoryTreeId) {
    ApplyTree(*state.mutable_category_tree(), event);
  } else if (IsSponsorProgramId(id)) {
    ApplyProgram(*state.mutable_sponsor_program(), event);
  } else {
    ApplyProfile(*state.mutable_profile(), event);
  }
}

}  // namespace helpline::catalog
