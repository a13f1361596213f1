#include "services/catalog/domain/catalog_domain.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/catalog/domain/validation.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/text_checks.h"

namespace helpline::catalog {
namespace {

using google::protobuf::util::MessageDifferencer;
using v1::CatalogCommand;
using v1::CatalogEvent;
using v1::CatalogState;
using Events = std::vector<CatalogEvent>;

// The processor's own checks: everything that needs nothing outside the
// command. The front has applied the full rules already.
absl::Status CheckContent(const v1::ProfileContent& content, const std::string& prefix) {
  errors::Validator validator;
  CheckProfileContent(content, prefix, ContentRules{.sealed_texts = true}, validator);
  return validator.Finish();
}

absl::Status CheckReason(const std::string& reason, const std::string& field) {
  errors::Validator validator;
  text::CheckText(reason, 1, 1000, field, validator, true);
  return validator.Finish();
}

absl::Status NothingToReview() {
  return absl::FailedPreconditionError("nothing of this profile waits for review");
}

absl::Status OnlyHelpline() {
  return absl::PermissionDeniedError("only Helpline itself sends this command");
}

// Also without a profile: the erased state then refuses a CreateProfile
// still on its way.
absl::StatusOr<Events> EraseProfile(const v1::ProfileState& profile, int64_t version) {
  if (profile.erased()) return Events{};
  Events events;
  CatalogEvent event;
  if (profile.status() == v1::PROFILE_STATUS_PUBLISHED) {
    event.mutable_profile_unpublished()->set_reason("the expert's account was deleted");
    events.push_back(event);
    event.Clear();
  }
  event.mutable_profile_erased();
  events.push_back(event);
  return events;
}

absl::StatusOr<Events> DecideProfile(const v1::ProfileState& profile, int64_t version,
                                     const CatalogCommand& command,
                                     const es::DecideContext& context) {
  CatalogEvent event;
  if (command.has_erase_profile()) {
    if (!es::SentByHelpline(context)) return OnlyHelpline();
    return EraseProfile(profile, version);
  }
  if (profile.erased()) {
    return absl::FailedPreconditionError("this expert's account was deleted");
  }
  if (command.has_create_profile()) {
    if (version > 0) return absl::AlreadyExistsError("this expert has a profile already");
    if (absl::Status s = CheckContent(command.create_profile().content(), "content."); !s.ok()) {
      return s;
    }
    *event.mutable_profile_created()->mutable_draft() = command.create_profile().content();
    return Events{event};
  }
  if (version == 0) return absl::NotFoundError("this expert has no profile");
  const v1::ProfileStatus status = profile.status();
  const bool approved = IsApproved(status);
  const bool in_review = status == v1::PROFILE_STATUS_SUBMITTED ||
                         (approved && profile.held_change() == v1::HELD_CHANGE_STATUS_IN_REVIEW);

  switch (command.body_case()) {
    case CatalogCommand::kUpdateProfile: {
      const v1::ProfileContent& content = command.update_profile().content();
      if (absl::Status s = CheckContent(content, "content."); !s.ok()) return s;
      if (!approved) {
        if (MessageDifferencer::Equals(content, profile.draft())) return Events{};
        *event.mutable_profile_draft_edited()->mutable_draft() = content;
        return Events{event};
      }
      Events events;
      if (TermsDiffer(content, profile.live())) {
        v1::ProfileContent live = profile.live();
        *live.mutable_price() = content.price();
        *live.mutable_availability() = content.availability();
        *event.mutable_live_terms_changed()->mutable_live() = std::move(live);
        events.push_back(event);
        event.Clear();
      }
      if (PublicFieldsDiffer(content, profile.live())) {
        // New text goes to review; the text held already (in review, or
        // rejected and not changed since) stays where it is.
        if (PublicFieldsDiffer(content, profile.draft())) {
          *event.mutable_profile_change_held()->mutable_draft() = content;
          events.push_back(event);
        }
      } else if (profile.held_change() != v1::HELD_CHANGE_STATUS_NONE) {
        // Back to what is live: the held change is withdrawn.
        *event.mutable_profile_draft_edited()->mutable_draft() = content;
        events.push_back(event);
      }
      return events;
    }
    case CatalogCommand::kSubmitProfile:
      if (status == v1::PROFILE_STATUS_SUBMITTED) return Events{};
      if (approved && profile.held_change() == v1::HELD_CHANGE_STATUS_REJECTED) {
        // The rejected change, as it is, back to review.
        *event.mutable_profile_change_held()->mutable_draft() = profile.draft();
        return Events{event};
      }
      if (approved && profile.held_change() == v1::HELD_CHANGE_STATUS_IN_REVIEW) return Events{};
      if (approved) {
        return absl::FailedPreconditionError(
            "the profile is approved; its changes go to review by themselves");
      }
      *event.mutable_profile_submitted()->mutable_draft() = profile.draft();
      return Events{event};
    case CatalogCommand::kApproveProfile:
      if (!in_review) return NothingToReview();
      if (approved) {
        *event.mutable_profile_change_approved()->mutable_live() = profile.draft();
      } else {
        *event.mutable_expert_approved()->mutable_live() = profile.draft();
      }
      return Events{event};
    case CatalogCommand::kRejectProfile: {
      const std::string& reason = command.reject_profile().reason();
      if (absl::Status s = CheckReason(reason, "reason"); !s.ok()) return s;
      if (!in_review) return NothingToReview();
      if (approved) {
        event.mutable_profile_change_rejected()->set_reason(reason);
      } else {
        event.mutable_profile_rejected()->set_reason(reason);
      }
      return Events{event};
    }
    case CatalogCommand::kPublishProfile:
      if (status == v1::PROFILE_STATUS_PUBLISHED) return Events{};
      if (!approved) {
        return absl::FailedPreconditionError("only an approved profile can be published");
      }
      if (profile.taken_down() && !command.publish_profile().by_admin()) {
        return absl::FailedPreconditionError(
            "an admin unpublished this profile; ask support to publish it again");
      }
      event.mutable_profile_published();
      return Events{event};
    case CatalogCommand::kUnpublishProfile: {
      const v1::UnpublishProfile& unpublish = command.unpublish_profile();
      if (unpublish.by_admin()) {
        if (absl::Status s = CheckReason(unpublish.reason(), "reason"); !s.ok()) return s;
      }
      if (status == v1::PROFILE_STATUS_UNPUBLISHED && !unpublish.by_admin()) return Events{};
      if (status != v1::PROFILE_STATUS_PUBLISHED && status != v1::PROFILE_STATUS_UNPUBLISHED) {
        return absl::FailedPreconditionError("only a published profile can be unpublished");
      }
      if (status == v1::PROFILE_STATUS_UNPUBLISHED && profile.taken_down()) return Events{};
      event.mutable_profile_unpublished()->set_reason(unpublish.reason());
      event.mutable_profile_unpublished()->set_by_admin(unpublish.by_admin());
      return Events{event};
    }
    default:
      return errors::InvalidField("body", "this command is not for an expert profile");
  }
}

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

absl::StatusOr<Events> DecideProgram(const v1::SponsorProgramState& program, int64_t version,
                                     const CatalogCommand& command,
                                     const es::DecideContext& context) {
  CatalogEvent event;
  auto check_terms = [](const v1::SponsorProgramTerms& terms) {
    errors::Validator validator;
    CheckSponsorTerms(terms, "terms.", ContentRules{}, validator);
    return validator.Finish();
  };
  if (command.has_create_sponsor_program()) {
    const v1::CreateSponsorProgram& create = command.create_sponsor_program();
    if (version > 0) return absl::AlreadyExistsError("this sponsor program exists already");
    if (create.sponsor_id().empty()) return errors::InvalidField("sponsor_id", "is required");
    if (absl::Status s = check_terms(create.terms()); !s.ok()) return s;
    event.mutable_sponsor_program_created()->set_sponsor_id(create.sponsor_id());
    *event.mutable_sponsor_program_created()->mutable_terms() = create.terms();
    return Events{event};
  }
  if (command.has_close_sponsor_program()) {
    if (!es::SentByHelpline(context)) return OnlyHelpline();
    if (version == 0 || program.closed()) return Events{};
    event.mutable_sponsor_program_paused()->set_closed(true);
    event.mutable_sponsor_program_paused()->set_reason(command.close_sponsor_program().reason());
    return Events{event};
  }
  if (version == 0) return absl::NotFoundError("no such sponsor program");
  if (program.closed()) {
    return absl::FailedPreconditionError("the program is closed: its sponsor's account was deleted");
  }
  switch (command.body_case()) {
    case CatalogCommand::kUpdateSponsorProgram: {
      const v1::SponsorProgramTerms& terms = command.update_sponsor_program().terms();
      if (absl::Status s = check_terms(terms); !s.ok()) return s;
      if (MessageDifferencer::Equals(terms, program.terms())) return Events{};
      *event.mutable_sponsor_program_updated()->mutable_terms() = terms;
      return Events{event};
    }
    case CatalogCommand::kPauseSponsorProgram:
      if (program.paused()) return Events{};
      event.mutable_sponsor_program_paused();
      return Events{event};
    case CatalogCommand::kResumeSponsorProgram:
      if (!program.paused()) return Events{};
      event.mutable_sponsor_program_resumed();
      return Events{event};
    default:
      return errors::InvalidField("body", "this command is not for a sponsor program");
  }
}

void ApplyProfile(v1::ProfileState& profile, const CatalogEvent& event) {
  switch (event.body_case()) {
    case CatalogEvent::kProfileCreated:
      profile.set_status(v1::PROFILE_STATUS_DRAFT);
      *profile.mutable_draft() = event.profile_created().draft();
      profile.set_held_change(v1::HELD_CHANGE_STATUS_NONE);
      *profile.mutable_created_at() = event.meta().occurred_at();
      break;
    case CatalogEvent::kProfileDraftEdited:
      *profile.mutable_draft() = event.profile_draft_edited().draft();
      if (IsApproved(profile.status())) {
        profile.set_held_change(v1::HELD_CHANGE_STATUS_NONE);
        profile.clear_rejection_reason();
      } else {
        profile.set_status(v1::PROFILE_STATUS_DRAFT);
      }
      break;
    case CatalogEvent::kProfileSubmitted:
      profile.set_status(v1::PROFILE_STATUS_SUBMITTED);
      *profile.mutable_draft() = event.profile_submitted().draft();
      *profile.mutable_submitted_at() = event.meta().occurred_at();
      profile.clear_rejection_reason();
      break;
    case CatalogEvent::kExpertApproved:
      profile.set_status(v1::PROFILE_STATUS_APPROVED);
      *profile.mutable_live() = event.expert_approved().live();
      *profile.mutable_draft() = event.expert_approved().live();
      profile.set_held_change(v1::HELD_CHANGE_STATUS_NONE);
      profile.clear_rejection_reason();
      break;
    case CatalogEvent::kProfileRejected:
      profile.set_status(v1::PROFILE_STATUS_REJECTED);
      profile.set_rejection_reason(event.profile_rejected().reason());
      break;
    case CatalogEvent::kProfileChangeHeld:
      *profile.mutable_draft() = event.profile_change_held().draft();
      profile.set_held_change(v1::HELD_CHANGE_STATUS_IN_REVIEW);
      *profile.mutable_submitted_at() = event.meta().occurred_at();
      profile.clear_rejection_reason();
      break;
    case CatalogEvent::kProfileChangeApproved:
      *profile.mutable_live() = event.profile_change_approved().live();
      profile.set_held_change(v1::HELD_CHANGE_STATUS_NONE);
      profile.clear_rejection_reason();
      break;
    case CatalogEvent::kProfileChangeRejected:
      profile.set_held_change(v1::HELD_CHANGE_STATUS_REJECTED);
      profile.set_rejection_reason(event.profile_change_rejected().reason());
      break;
    case CatalogEvent::kLiveTermsChanged: {
      const v1::ProfileContent& live = event.live_terms_changed().live();
      *profile.mutable_live() = live;
      *profile.mutable_draft()->mutable_price() = live.price();
      *profile.mutable_draft()->mutable_availability() = live.availability();
      break;
    }
    case CatalogEvent::kProfilePublished:
      profile.set_status(v1::PROFILE_STATUS_PUBLISHED);
      profile.set_taken_down(false);
      break;
    case CatalogEvent::kProfileUnpublished:
      profile.set_status(v1::PROFILE_STATUS_UNPUBLISHED);
      profile.set_taken_down(event.profile_unpublished().by_admin());
      break;
    case CatalogEvent::kProfileErased: {
      v1::ProfileState erased;
      erased.set_status(v1::PROFILE_STATUS_UNPUBLISHED);
      erased.set_erased(true);
      *erased.mutable_created_at() = profile.created_at();
      profile = std::move(erased);
      break;
    }
    default:
      break;
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

void ApplyProgram(v1::SponsorProgramState& program, const CatalogEvent& event) {
  switch (event.body_case()) {
    case CatalogEvent::kSponsorProgramCreated:
      program.set_sponsor_id(event.sponsor_program_created().sponsor_id());
      *program.mutable_terms() = event.sponsor_program_created().terms();
      break;
    case CatalogEvent::kSponsorProgramUpdated:
      *program.mutable_terms() = event.sponsor_program_updated().terms();
      break;
    case CatalogEvent::kSponsorProgramPaused:
      program.set_paused(true);
      program.set_closed(event.sponsor_program_paused().closed());
      break;
    case CatalogEvent::kSponsorProgramResumed:
      program.set_paused(false);
      break;
    default:
      break;
  }
}

}  // namespace

bool IsSponsorProgramId(const std::string& aggregate_id) {
  return absl::StartsWith(aggregate_id, kSponsorProgramPrefix) &&
         aggregate_id.size() > sizeof(kSponsorProgramPrefix) - 1;
}

bool IsApproved(v1::ProfileStatus status) {
  return status == v1::PROFILE_STATUS_APPROVED || status == v1::PROFILE_STATUS_PUBLISHED ||
         status == v1::PROFILE_STATUS_UNPUBLISHED;
}

bool TermsDiffer(const v1::ProfileContent& a, const v1::ProfileContent& b) {
  return !MessageDifferencer::Equals(a.price(), b.price()) ||
         !MessageDifferencer::Equals(a.availability(), b.availability());
}

bool PublicFieldsDiffer(const v1::ProfileContent& a, const v1::ProfileContent& b) {
  v1::ProfileContent public_a = a;
  v1::ProfileContent public_b = b;
  for (v1::ProfileContent* content : {&public_a, &public_b}) {
    content->clear_price();
    content->clear_availability();
  }
  return !MessageDifferencer::Equals(public_a, public_b);
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
