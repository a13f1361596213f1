#pragma once

#include "absl/time/time.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "services/matching/presence.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/eventsourcing/command_sender.h"

namespace helpline::matching {

struct MatchingOptions {
  absl::Duration heartbeat_interval = absl::Seconds(10);
  absl::Duration command_timeout = absl::Seconds(10);
};

// The MatchingService API. Heartbeats go to Redis; a change of status there
// becomes a command to the expert's presence aggregate, whose events tell
// catalog and analysts who is online.
class MatchingService final : public v1::MatchingService::Service {
 public:
  MatchingService(MatchingOptions options, PresenceStore& presence, es::CommandSender& commands,
                  auth::CallGuard& guard);

  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;

 private:
  const MatchingOptions options_;
  PresenceStore& presence_;
  es::CommandSender& commands_;
  auth::CallGuard& guard_;
};

// Sends a presence change (a heartbeat's or the sweep's) to the expert's
// presence aggregate and waits for the processor's answer.
absl::Status SendPresenceCommand(es::CommandSender& commands, v1::MatchingCommand command,
                                 const std::string& expert_id, int64_t sequence,
                                 absl::Duration timeout);

}  // namespace helpline::matching
