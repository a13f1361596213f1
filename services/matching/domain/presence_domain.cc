#include "services/matching/domain/presence_domain.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"

namespace helpline::matching {
namespace {

using v1::MatchingCommand;
using v1::MatchingEvent;
using Events = std::vector<MatchingEvent>;

bool Online(v1::PresenceStatus status) {
  return status == v1::PRESENCE_STATUS_AVAILABLE || status == v1::PRESENCE_STATUS_BUSY ||
         status == v1::PRESENCE_STATUS_AWAY;
}

absl::StatusOr<Events> DecidePresence(const v1::ExpertPresenceState& presence,
                                      const std::string& expert_id,
                                      const MatchingCommand& command) {
  MatchingEvent event;
  switch (command.body_case()) {
    case MatchingCommand::kRecordPresence: {
      const v1::RecordPresence& record = command.record_presence();
      if (!Online(record.status())) {
        return errors::InvalidField("record_presence.status", "must be available, busy or away");
      }
      // Redis's order decides: a change it counted before the last one applied is stale.
      if (record.sequence() <= presence.sequence() || record.status() == presence.status()) {
        return Events{};
      }
      if (Online(presence.status())) {
        v1::ExpertStatusChanged& changed = *event.mutable_expert_status_changed();
        changed.set_expert_id(expert_id);
        changed.set_status(record.status());
        changed.set_previous_status(presence.status());
        changed.set_sequence(record.sequence());
      } else {
        v1::ExpertWentOnline& online = *event.mutable_expert_went_online();
        online.set_expert_id(expert_id);
        online.set_status(record.status());
        online.set_sequence(record.sequence());
      }
      return Events{event};
    }
    case MatchingCommand::kMarkOffline: {
      const v1::MarkOffline& mark = command.mark_offline();
      if (mark.sequence() <= presence.sequence() || !Online(presence.status())) return Events{};
      v1::ExpertWentOffline& offline = *event.mutable_expert_went_offline();
      offline.set_expert_id(expert_id);
      offline.set_sequence(mark.sequence());
      return Events{event};
    }
    default:
      return errors::InvalidField("body", "this command is not for an expert's presence");
  }
}

}  // namespace

std::string PresenceId(const std::string& expert_id) {
  return absl::StrCat(kPresencePrefix, expert_id);
}

std::string ExpertOfPresence(const std::string& aggregate_id) {
  if (!absl::StartsWith(aggregate_id, kPresencePrefix)) return "";
  return aggregate_id.substr(sizeof(kPresencePrefix) - 1);
}

absl::StatusOr<std::vector<MatchingEvent>> MatchingDomain::Decide(
    const v1::MatchingState& state, const MatchingCommand& command,
    const es::DecideContext& context) {
  if (command.body_case() == MatchingCommand::BODY_NOT_SET) {
    return errors::InvalidField("body", "a command is required");
  }
  std::string expert_id = ExpertOfPresence(context.aggregate_id);
  if (expert_id.empty()) return errors::InvalidField("meta.aggregate_id", "is not a presence id");
  return DecidePresence(state.presence(), expert_id, command);
}

void MatchingDomain::Apply(v1::MatchingState& state, const MatchingEvent& event) {
  v1::ExpertPresenceState& presence = *state.mutable_presence();
  switch (event.body_case()) {
    case MatchingEvent::kExpertWentOnline:
      presence.set_status(event.expert_went_online().status());
      presence.set_sequence(event.expert_went_online().sequence());
      break;
    case MatchingEvent::kExpertStatusChanged:
      presence.set_status(event.expert_status_changed().status());
      presence.set_sequence(event.expert_status_changed().sequence());
      break;
    case MatchingEvent::kExpertWentOffline:
      presence.set_status(v1::PRESENCE_STATUS_OFFLINE);
      presence.set_sequence(event.expert_went_offline().sequence());
      break;
    case MatchingEvent::BODY_NOT_SET:
      break;
  }
}

}  // namespace helpline::matching
