#include "absl/strings/str_cat.h"
#include "services/matching/domain/matching_domain.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

// A help request: opened, offered to one expert at a time (the dispatcher
// picks and reserves the expert; this only accepts an offer while the
// request waits), then matched, cancelled or expired.
namespace helpline::matching {
namespace {

using v1::MatchingCommand;
using v1::MatchingEvent;
using Events = std::vector<MatchingEvent>;

bool Open(const v1::HelpRequestState& request) {
  return request.status() == v1::HELP_REQUEST_STATUS_WAITING ||
         request.status() == v1::HELP_REQUEST_STATUS_OFFERED;
}

std::string Actor(const es::DecideContext& context) {
  return context.meta == nullptr ? "" : context.meta->actor().user_id();
}

absl::Status NotOpen(const v1::HelpRequestState& request) {
  return absl::FailedPreconditionError(
      absl::StrCat("the help request is ", v1::HelpRequestStatus_Name(request.status())));
}

// The open offer `offer_id` of the request, answered by its expert.
absl::Status CheckAnswer(const v1::HelpRequestState& request, const std::string& offer_id,
                         const es::DecideContext& context) {
  if (request.status() != v1::HELP_REQUEST_STATUS_OFFERED ||
      request.offer().offer_id() != offer_id) {
    return absl::FailedPreconditionError("the offer is no longer open");
  }
  if (Actor(context) != request.offer().expert_id()) {
    return absl::PermissionDeniedError("only the expert the offer went to can answer it");
  }
  if (context.now >= FromProtoTime(request.offer().expires_at())) {
    return absl::FailedPreconditionError("the offer has expired");
  }
  return absl::OkStatus();
}

absl::StatusOr<Events> Opened(const v1::HelpRequestState& request,
                              const v1::OpenHelpRequest& open, const es::DecideContext& context) {
  if (request.status() != v1::HELP_REQUEST_STATUS_UNSPECIFIED) {
    return absl::AlreadyExistsError("this help request exists already");
  }
  std::vector<errors::FieldViolation> violations;
  auto require = [&](bool ok, const char* field, const char* description) {
    if (!ok) violations.push_back({absl::StrCat("open_help_request.", field), description});
  };
  require(!open.person_id().empty(), "person_id", "is required");
  require(!open.category_id().empty(), "category_id", "is required");
  require(!open.language().empty(), "language", "is required");
  require(!open.description().empty(), "description", "is required");
  require(open.max_minutes() >= 5 && open.max_minutes() <= 240, "max_minutes",
          "must be 5 to 240");
  require(!open.sponsor_program_id().empty() || open.budget().kind_case() != v1::Budget::KIND_NOT_SET,
          "budget", "is required unless a sponsor program pays");
  require(FromProtoDuration(open.wait_limit()) > absl::ZeroDuration(), "wait_limit",
          "must be positive");
  if (!violations.empty()) return errors::InvalidFields(violations);
  MatchingEvent event;
  v1::HelpRequested& requested = *event.mutable_help_requested();
  requested.set_person_id(open.person_id());
  requested.set_category_id(open.category_id());
  requested.set_language(open.language());
  requested.set_description(open.description());
  *requested.mutable_budget() = open.budget();
  requested.set_max_minutes(open.max_minutes());
  requested.set_sponsor_program_id(open.sponsor_program_id());
  *requested.mutable_expires_at() =
      ToProtoTime(context.now + FromProtoDuration(open.wait_limit()));
  return Events{event};
}

absl::StatusOr<Events> Offered(const v1::HelpRequestState& request,
                               const v1::OfferToExpert& offer, const es::DecideContext& context) {
  if (request.status() != v1::HELP_REQUEST_STATUS_WAITING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only a waiting help request is offered; this one is ",
        v1::HelpRequestStatus_Name(request.status())));
  }
  if (offer.offer_id().empty() || offer.expert_id().empty()) {
    return errors::InvalidField("offer_to_expert", "offer_id and expert_id are required");
  }
  if (offer.expert_id() == request.request().person_id()) {
    return absl::FailedPreconditionError("an expert is not offered their own request");
  }
  for (const std::string& earlier : request.offered_experts()) {
    if (earlier == offer.expert_id()) {
      return absl::FailedPreconditionError("this expert had this request offered already");
    }
  }
  absl::Duration window = FromProtoDuration(offer.window());
  if (window <= absl::ZeroDuration()) {
    return errors::InvalidField("offer_to_expert.window", "must be positive");
  }
  MatchingEvent event;
  v1::ExpertOffered& offered = *event.mutable_expert_offered();
  offered.set_offer_id(offer.offer_id());
  offered.set_expert_id(offer.expert_id());
  *offered.mutable_price() = offer.price();
  offered.set_max_minutes(offer.max_minutes());
  *offered.mutable_max_amount() = offer.max_amount();
  *offered.mutable_expires_at() = ToProtoTime(context.now + window);
  return Events{event};
}

MatchingEvent Matched(const v1::HelpRequestState& request, const es::DecideContext& context) {
  const v1::OfferState& offer = request.offer();
  const v1::HelpRequested& asked = request.request();
  MatchingEvent event;
  v1::MatchMade& made = *event.mutable_match_made();
  v1::Match& match = *made.mutable_match();
  match.set_match_id(HelpRequestOf(context.aggregate_id));
  match.set_person_id(asked.person_id());
  match.set_expert_id(offer.expert_id());
  *match.mutable_price() = offer.price();
  match.set_max_minutes(offer.max_minutes());
  *match.mutable_max_amount() = offer.max_amount();
  match.set_sponsor_program_id(asked.sponsor_program_id());
  *match.mutable_matched_at() = ToProtoTime(context.now);
  match.set_category_id(asked.category_id());
  made.set_offer_id(offer.offer_id());
  *made.mutable_waited() = ToProtoDuration(context.now - FromProtoTime(request.opened_at()));
  return event;
}

}  // namespace

absl::StatusOr<Events> DecideHelpRequest(const v1::HelpRequestState& request,
                                         const MatchingCommand& command,
                                         const es::DecideContext& context) {
  if (command.body_case() != MatchingCommand::kOpenHelpRequest &&
      request.status() == v1::HELP_REQUEST_STATUS_UNSPECIFIED) {
    return absl::NotFoundError("no such help request");
  }
  MatchingEvent event;
  switch (command.body_case()) {
    case MatchingCommand::kOpenHelpRequest:
      return Opened(request, command.open_help_request(), context);
    case MatchingCommand::kOfferToExpert:
      return Offered(request, command.offer_to_expert(), context);
    case MatchingCommand::kAcceptOffer: {
      if (absl::Status ok = CheckAnswer(request, command.accept_offer().offer_id(), context);
          !ok.ok()) {
        return ok;
      }
      return Events{Matched(request, context)};
    }
    case MatchingCommand::kDeclineOffer: {
      if (absl::Status ok = CheckAnswer(request, command.decline_offer().offer_id(), context);
          !ok.ok()) {
        return ok;
      }
      event.mutable_offer_declined()->set_offer_id(request.offer().offer_id());
      event.mutable_offer_declined()->set_expert_id(request.offer().expert_id());
      return Events{event};
    }
    case MatchingCommand::kExpireOffer: {
      // A timer that fires late or twice finds nothing to do.
      if (request.status() != v1::HELP_REQUEST_STATUS_OFFERED ||
          request.offer().offer_id() != command.expire_offer().offer_id() ||
          context.now < FromProtoTime(request.offer().expires_at())) {
        return Events{};
      }
      event.mutable_offer_expired()->set_offer_id(request.offer().offer_id());
      event.mutable_offer_expired()->set_expert_id(request.offer().expert_id());
      return Events{event};
    }
    case MatchingCommand::kCancelHelpRequest: {
      const bool account_deleted = command.cancel_help_request().account_deleted();
      if (account_deleted) {
        if (!es::SentByHelpline(context)) {
          return absl::PermissionDeniedError("only Helpline cancels a request for a deleted account");
        }
        if (!Open(request)) return Events{};
      } else if (Actor(context) != request.request().person_id()) {
        return absl::PermissionDeniedError("only the person who asked can cancel the request");
      }
      if (!Open(request)) return NotOpen(request);
      v1::HelpRequestCancelled& cancelled = *event.mutable_help_request_cancelled();
      cancelled.set_person_id(request.request().person_id());
      if (account_deleted) cancelled.set_reason("the person's account was deleted");
      if (request.status() == v1::HELP_REQUEST_STATUS_OFFERED) {
        cancelled.set_offer_id(request.offer().offer_id());
        cancelled.set_expert_id(request.offer().expert_id());
      }
      return Events{event};
    }
    case MatchingCommand::kExpireHelpRequest: {
      if (!Open(request) || context.now < FromProtoTime(request.request().expires_at())) {
        return Events{};
      }
      v1::HelpRequestExpired& expired = *event.mutable_help_request_expired();
      if (request.status() == v1::HELP_REQUEST_STATUS_OFFERED) {
        expired.set_offer_id(request.offer().offer_id());
        expired.set_expert_id(request.offer().expert_id());
      }
      return Events{event};
    }
    default:
      return errors::InvalidField("body", "this command is not for a help request");
  }
}

void ApplyHelpRequest(v1::HelpRequestState& request, const MatchingEvent& event) {
  switch (event.body_case()) {
    case MatchingEvent::kHelpRequested:
      request.set_status(v1::HELP_REQUEST_STATUS_WAITING);
      *request.mutable_request() = event.help_requested();
      *request.mutable_opened_at() = event.meta().occurred_at();
      break;
    case MatchingEvent::kExpertOffered: {
      const v1::ExpertOffered& offered = event.expert_offered();
      request.set_status(v1::HELP_REQUEST_STATUS_OFFERED);
      v1::OfferState& offer = *request.mutable_offer();
      offer.set_offer_id(offered.offer_id());
      offer.set_expert_id(offered.expert_id());
      *offer.mutable_price() = offered.price();
      offer.set_max_minutes(offered.max_minutes());
      *offer.mutable_max_amount() = offered.max_amount();
      *offer.mutable_offered_at() = event.meta().occurred_at();
      *offer.mutable_expires_at() = offered.expires_at();
      request.add_offered_experts(offered.expert_id());
      break;
    }
    case MatchingEvent::kOfferDeclined:
    case MatchingEvent::kOfferExpired:
      request.set_status(v1::HELP_REQUEST_STATUS_WAITING);
      request.clear_offer();
      break;
    case MatchingEvent::kMatchMade:
      request.set_status(v1::HELP_REQUEST_STATUS_MATCHED);
      request.set_match_offer_id(event.match_made().offer_id());
      break;
    case MatchingEvent::kHelpRequestCancelled:
      request.set_status(v1::HELP_REQUEST_STATUS_CANCELLED);
      request.clear_offer();
      break;
    case MatchingEvent::kHelpRequestExpired:
      request.set_status(v1::HELP_REQUEST_STATUS_EXPIRED);
      request.clear_offer();
      break;
    default:
      break;
  }
}

}  // namespace helpline::matching
