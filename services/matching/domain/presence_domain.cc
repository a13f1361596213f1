#include "services/matching/domain/matching_domain.h"
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

}  // namespace

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

void ApplyPresence(v1::ExpertPresenceState& presence, const MatchingEvent& event) {
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
    default:
      break;
  }
}

}  // namespace helpline::matching
