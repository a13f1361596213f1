#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/event_feed.h"

namespace helpline::es {

// Where a front's command comes from.
struct CommandOrigin {
  std::string aggregate_id;
  std::string command_id;
  // The signed-in caller; empty when the front acts on its own (`system`).
  std::string actor_user_id;
  std::string system;
  // 0: no expectation; else ABORTED unless the aggregate is at this version.
  int64_t expected_version = 0;
};

// A write as a front does it: fills the command's meta from `origin`, sends
// it, turns a rejection into its status, and waits until `events` has applied
// the command's last event so the caller reads its own write.
absl::StatusOr<runtime::v1::Reply> ExecuteCommand(CommandSender& sender, EventFeed& events,
                                                  google::protobuf::Message& command,
                                                  runtime::v1::CommandMeta& meta,
                                                  const CommandOrigin& origin,
                                                  absl::Duration timeout);

template <class Command>
absl::StatusOr<runtime::v1::Reply> ExecuteCommand(CommandSender& sender, EventFeed& events,
                                                  Command& command, const CommandOrigin& origin,
                                                  absl::Duration timeout) {
  return ExecuteCommand(sender, events, command, *command.mutable_meta(), origin, timeout);
}

}  // namespace helpline::es
