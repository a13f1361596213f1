#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/validation.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/text_checks.h"

namespace helpline::catalog {
namespace {

using v1::CatalogCommand;
using v1::CatalogEvent;
using Events = std::vector<CatalogEvent>;

bool IsUnder(const v1::CategoryTreeState& tree, const std::string& id,
             const std::string& ancestor) {
  std::string at = id;
  for (int depth = 0; !at.empty() && depth <= tree.categories_size(); ++depth) {
    if (at == ancestor) return true;
    auto node = tree.categories().find(at);
    if (node == tree.categories().end()) return false;
    at = node->second.parent_id();
  }
  return false;
}

absl::Status CheckParent(const v1::CategoryTreeState& tree, const std::string& parent_id) {
  if (parent_id.empty()) return absl::OkStatus();
  auto parent = tree.categories().find(parent_id);
  if (parent == tree.categories().end() || parent->second.retired()) {
    return errors::InvalidField("parent_id", "is not an active category");
  }
  return absl::OkStatus();
}

absl::Status CheckName(const v1::CategoryTreeState& tree, const std::string& name,
                       const std::string& parent_id, const std::string& except_id) {
  errors::Validator validator;
  text::CheckText(name, 1, 60, "name", validator);
  if (absl::Status s = validator.Finish(); !s.ok()) return s;
  for (const auto& [id, node] : tree.categories()) {
    if (id != except_id && !node.retired() && node.parent_id() == parent_id &&
        absl::AsciiStrToLower(node.name()) == absl::AsciiStrToLower(name)) {
      return errors::InvalidField("name", absl::StrCat("\"", id, "\" has this name already"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Events> DecideTree(const v1::CategoryTreeState& tree,
                                  const CatalogCommand& command) {
  CatalogEvent event;
  auto existing = [&](const std::string& id) -> absl::StatusOr<const v1::CategoryNode*> {
    auto node = tree.categories().find(id);
    if (node == tree.categories().end()) return absl::NotFoundError("no such category");
    return &node->second;
  };
  switch (command.body_case()) {
    case CatalogCommand::kSeedCategories: {
      if (!tree.categories().empty()) return Events{};
      v1::CategoryTreeState seeded;
      Events events;
      for (const v1::CategorySeed& seed : command.seed_categories().categories()) {
        if (!IsCategorySlug(seed.category_id()) ||
            seeded.categories().contains(seed.category_id())) {
          return errors::InvalidField("categories.category_id", "must be unique slugs");
        }
        if (absl::Status s = CheckParent(seeded, seed.parent_id()); !s.ok()) return s;
        v1::CategoryCreated& created = *event.mutable_category_created();
        created.set_category_id(seed.category_id());
        created.set_name(seed.name());
        created.set_parent_id(seed.parent_id());
        v1::CategoryNode& node = (*seeded.mutable_categories())[seed.category_id()];
        node.set_parent_id(seed.parent_id());
        events.push_back(event);
      }
      return events;
    }
    case CatalogCommand::kCreateCategory: {
      const v1::CreateCategory& create = command.create_category();
      if (!IsCategorySlug(create.category_id())) {
        return errors::InvalidField("category_id",
                                    "must be 2 to 40 of a-z, 0-9 and \"-\" (a slug)");
      }
      if (tree.categories().contains(create.category_id())) {
        return absl::AlreadyExistsError("this category id is taken (ids are never reused)");
      }
      if (absl::Status s = CheckParent(tree, create.parent_id()); !s.ok()) return s;
      if (absl::Status s = CheckName(tree, create.name(), create.parent_id(), ""); !s.ok()) {
        return s;
      }
      v1::CategoryCreated& created = *event.mutable_category_created();
      created.set_category_id(create.category_id());
      created.set_name(create.name());
      created.set_parent_id(create.parent_id());
      return Events{event};
    }
    case CatalogCommand::kRenameCategory: {
      const v1::RenameCategory& rename = command.rename_category();
      absl::StatusOr<const v1::CategoryNode*> node = existing(rename.category_id());
      if (!node.ok()) return node.status();
      if ((*node)->retired()) return absl::FailedPreconditionError("the category is retired");
      if ((*node)->name() == rename.name()) return Events{};
      if (absl::Status s = CheckName(tree, rename.name(), (*node)->parent_id(),
                                     rename.category_id());
          !s.ok()) {
        return s;
      }
      event.mutable_category_renamed()->set_category_id(rename.category_id());
      event.mutable_category_renamed()->set_name(rename.name());
      return Events{event};
    }
    case CatalogCommand::kMoveCategory: {
      const v1::MoveCategory& move = command.move_category();
      absl::StatusOr<const v1::CategoryNode*> node = existing(move.category_id());
      if (!node.ok()) return node.status();
      if ((*node)->retired()) return absl::FailedPreconditionError("the category is retired");
      if ((*node)->parent_id() == move.parent_id()) return Events{};
      if (absl::Status s = CheckParent(tree, move.parent_id()); !s.ok()) return s;
      if (IsUnder(tree, move.parent_id(), move.category_id())) {
        return errors::InvalidField("parent_id", "would put the category under itself");
      }
      if (absl::Status s = CheckName(tree, (*node)->name(), move.parent_id(),
                                     move.category_id());
          !s.ok()) {
        return s;
      }
      event.mutable_category_moved()->set_category_id(move.category_id());
      event.mutable_category_moved()->set_parent_id(move.parent_id());
      return Events{event};
    }
    case CatalogCommand::kRetireCategory: {
      const std::string& id = command.retire_category().category_id();
      absl::StatusOr<const v1::CategoryNode*> node = existing(id);
      if (!node.ok()) return node.status();
      if ((*node)->retired()) return Events{};
      for (const auto& [child_id, child] : tree.categories()) {
        if (child.parent_id() == id && !child.retired()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "\"", child_id, "\" is still under it; retire or move its subcategories first"));
        }
      }
      event.mutable_category_retired()->set_category_id(id);
      return Events{event};
    }
    default:
      return errors::InvalidField("body", "this command is not for the category tree");
  }
}

void ApplyTree(v1::CategoryTreeState& tree, const CatalogEvent& event) {
  auto& categories = *tree.mutable_categories();
  switch (event.body_case()) {
    case CatalogEvent::kCategoryCreated: {
      v1::CategoryNode& node = categories[event.category_created().category_id()];
      node.set_name(event.category_created().name());
      node.set_parent_id(event.category_created().parent_id());
      break;
    }
    case CatalogEvent::kCategoryRenamed:
      categories[event.category_renamed().category_id()].set_name(event.category_renamed().name());
      break;
    case CatalogEvent::kCategoryMoved:
      categories[event.category_moved().category_id()].set_parent_id(
          event.category_moved().parent_id());
      break;
    case CatalogEvent::kCategoryRetired:
      categories[event.category_retired().category_id()].set_retired(true);
      break;
    default:
      break;
  }
}

}  // namespace helpline::catalog
