#include "services/matching/domain/calls_in_progress.h"

namespace helpline::matching {

std::optional<std::string> CallsInProgress::Apply(const sessions::v1::SessionsEvent& event) {
  const std::string& session_id = event.meta().aggregate_id();
  switch (event.body_case()) {
    case sessions::v1::SessionsEvent::kSessionCreated:
      session_experts_[session_id] = event.session_created().expert_id();
      // A match's expert is in the call from now; a booking's once someone joins.
      if (event.session_created().kind() == sessions::v1::SESSION_KIND_HELP_NOW) {
        Count(session_id, true);
      }
      return std::nullopt;
    case sessions::v1::SessionsEvent::kParticipantJoined:
      Count(session_id, true);
      return std::nullopt;
    case sessions::v1::SessionsEvent::kSessionNoShow:
    case sessions::v1::SessionsEvent::kSessionEnded:
    case sessions::v1::SessionsEvent::kSessionCancelled: {
      Count(session_id, false);
      sessions_in_call_.erase(session_id);
      auto expert = session_experts_.find(session_id);
      if (expert == session_experts_.end()) return std::nullopt;
      std::string expert_id = std::move(expert->second);
      session_experts_.erase(expert);
      return expert_id;
    }
    default:
      return std::nullopt;
  }
}

bool CallsInProgress::UnderWay(const std::string& session_id) const {
  auto found = sessions_in_call_.find(session_id);
  return found != sessions_in_call_.end() && found->second;
}

void CallsInProgress::Count(const std::string& session_id, bool in_call) {
  auto expert = session_experts_.find(session_id);
  if (expert == session_experts_.end()) return;
  bool& counted = sessions_in_call_[session_id];
  if (counted == in_call) return;
  counted = in_call;
  int& calls = experts_in_call_[expert->second];
  calls += in_call ? 1 : -1;
  if (calls <= 0) experts_in_call_.erase(expert->second);
}

}  // namespace helpline::matching
