#include "absl/strings/match.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/validation.h"
#include "services/runtime/core/errors.h"

namespace helpline::catalog {

using google::protobuf::util::MessageDifferencer;
using v1::CatalogCommand;
using v1::CatalogEvent;
using Events = std::vector<CatalogEvent>;

bool IsSponsorProgramId(const std::string& aggregate_id) {
  return absl::StartsWith(aggregate_id, kSponsorProgramPrefix) &&
         aggregate_id.size() > sizeof(kSponsorProgramPrefix) - 1;
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
    if (!es::SentByHelpline(context)) return OnlyHelplineSends();
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

}  // namespace helpline::catalog
