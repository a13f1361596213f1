#include "absl/strings/match.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/validation.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/text_checks.h"

namespace helpline::catalog {
namespace {

using google::protobuf::util::MessageDifferencer;
using v1::CatalogCommand;
using v1::CatalogEvent;
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

}  // namespace

absl::StatusOr<Events> DecideProfile(const v1::ProfileState& profile, int64_t version,
                                     const CatalogCommand& command,
                                     const es::DecideContext& context) {
  CatalogEvent event;
  if (command.has_erase_profile()) {
    if (!es::SentByHelpline(context)) return OnlyHelplineSends();
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

}  // namespace helpline::catalog
