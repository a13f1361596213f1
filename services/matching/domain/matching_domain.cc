#include "services/matching/domain/matching_domain.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::matching {
namespace {

std::string After(const std::string& aggregate_id, absl::string_view prefix) {
  if (!absl::StartsWith(aggregate_id, prefix) || aggregate_id.size() == prefix.size()) return "";
  return aggregate_id.substr(prefix.size());
}

}  // namespace

std::string PresenceId(const std::string& expert_id) {
  return absl::StrCat(kPresencePrefix, expert_id);
}
std::string CalendarId(const std::string& expert_id) {
  return absl::StrCat(kCalendarPrefix, expert_id);
}
std::string HelpRequestAggregate(const std::string& help_request_id) {
  return absl::StrCat(kHelpRequestPrefix, help_request_id);
}
std::string HelpRequestOf(const std::string& aggregate_id) {
  return After(aggregate_id, kHelpRequestPrefix);
}
std::string ExpertOfPresence(const std::string& aggregate_id) {
  return After(aggregate_id, kPresencePrefix);
}
std::string ExpertOfCalendar(const std::string& aggregate_id) {
  return After(aggregate_id, kCalendarPrefix);
}

absl::StatusOr<std::vector<v1::MatchingEvent>> MatchingDomain::Decide(
    const v1::MatchingState& state, const v1::MatchingCommand& command,
    const es::DecideContext& context) {
  if (command.body_case() == v1::MatchingCommand::BODY_NOT_SET) {
    return errors::InvalidField("body", "a command is required");
  }
  const std::string& id = context.aggregate_id;
  if (std::string expert = ExpertOfPresence(id); !expert.empty()) {
    return DecidePresence(state.presence(), expert, command);
  }
  if (std::string expert = ExpertOfCalendar(id); !expert.empty()) {
    return DecideCalendar(state.calendar(), expert, command, context);
  }
  if (!HelpRequestOf(id).empty()) {
    return DecideHelpRequest(state.help_request(), command, context);
  }
  return errors::InvalidField("meta.aggregate_id", "is not a matching aggregate id");
}

void MatchingDomain::Apply(v1::MatchingState& state, const v1::MatchingEvent& event) {
  const std::string& id = event.meta().aggregate_id();
  if (absl::StartsWith(id, kPresencePrefix)) {
    ApplyPresence(*state.mutable_presence(), event);
  } else if (absl::StartsWith(id, kCalendarPrefix)) {
    ApplyCalendar(*state.mutable_calendar(), event);
  } else if (absl::StartsWith(id, kHelpRequestPrefix)) {
    ApplyHelpRequest(*state.mutable_help_request(), event);
  }
}

std::optional<absl::Time> MatchingDomain::NextDeadline(const v1::MatchingState& state) {
  if (!state.has_help_request()) return std::nullopt;
  const v1::HelpRequestState& request = state.help_request();
  absl::Time expires = FromProtoTime(request.request().expires_at());
  switch (request.status()) {
    case v1::HELP_REQUEST_STATUS_WAITING:
      return expires;
    case v1::HELP_REQUEST_STATUS_OFFERED:
      return std::min(expires, FromProtoTime(request.offer().expires_at()));
    default:
      return std::nullopt;
  }
}

v1::MatchingCommand MatchingDomain::OnDeadline(const v1::MatchingState& state, absl::Time due) {
  const v1::HelpRequestState& request = state.help_request();
  v1::MatchingCommand command;
  if (request.status() == v1::HELP_REQUEST_STATUS_OFFERED &&
      FromProtoTime(request.offer().expires_at()) <= due &&
      FromProtoTime(request.offer().expires_at()) < FromProtoTime(request.request().expires_at())) {
    command.mutable_expire_offer()->set_offer_id(request.offer().offer_id());
  } else {
    command.mutable_expire_help_request();
  }
  return command;
}

}  // namespace helpline::matching
