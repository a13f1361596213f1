#pragma once

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "helpline/sessions/v1/events.pb.h"

// Part of matching's read model (read_model.h), not thread-safe on its own:
// from sessions' events, which experts are in a call now (they get no
// offers) and which sessions are under way.
namespace helpline::matching {

class CallsInProgress {
 public:
  // SessionCreated, ParticipantJoined, and the ends (SessionEnded,
  // SessionCancelled, SessionNoShow); returns the expert of a session that
  // just ended, if it was known.
  std::optional<std::string> Apply(const sessions::v1::SessionsEvent& event);

  bool InCall(const std::string& expert_id) const { return experts_in_call_.contains(expert_id); }
  // Someone has joined the session (a booking's id is its session's), and it has not ended.
  bool UnderWay(const std::string& session_id) const;

 private:
  void Count(const std::string& session_id, bool in_call);

  // Sessions not over yet: their expert, whether they count as a call now,
  // and each expert's calls.
  absl::flat_hash_map<std::string, std::string> session_experts_;
  absl::flat_hash_map<std::string, bool> sessions_in_call_;
  absl::flat_hash_map<std::string, int> experts_in_call_;
};

}  // namespace helpline::matching
