#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/event_feed.h"

namespace helpline::es {

// Who a write is by, and what it expects of its aggregate.
struct CommandOrigin {
  // A signed-in user's write; `command_id` derived from the user and their
  // request id (ids::CommandId), so a retried request is the same command.
  static CommandOrigin ByUser(std::string aggregate_id, std::string command_id,
                              std::string user_id, int64_t expected_version = 0) {
    return {std::move(aggregate_id), std::move(command_id), std::move(user_id), "",
            expected_version};
  }
  // Helpline's own write (a seed, a sweep, a worker), by `system`
  // ("catalog.seed"); such commands are es::SentByHelpline.
  static CommandOrigin ByHelpline(std::string aggregate_id, std::string command_id,
                                  std::string system) {
    return {std::move(aggregate_id), std::move(command_id), "", std::move(system), 0};
  }

  std::string aggregate_id;
  std::string command_id;
  std::string user_id;  // empty for Helpline's own writes
  std::string system;
  // 0: no expectation; else ABORTED unless the aggregate is at this version.
  int64_t expected_version = 0;
};

// What writes commands: the Front, or a fake in unit tests
// (es::testing::DomainWriter).
class Writer {
 public:
  virtual ~Writer() = default;

  // The reply tells the aggregate's version after the write.
  template <class Command>
  absl::StatusOr<runtime::v1::Reply> Execute(Command& command, const CommandOrigin& origin) {
    return Execute(command, *command.mutable_meta(), origin, /*read_back=*/true);
  }
  template <class Command>
  absl::Status Write(Command& command, const CommandOrigin& origin) {
    return Execute(command, origin).status();
  }
  // A write nobody reads back at once (a presence change): the processor's
  // outcome, without waiting for the read model.
  template <class Command>
  absl::Status Send(Command& command, const CommandOrigin& origin) {
    return Execute(command, *command.mutable_meta(), origin, /*read_back=*/false).status();
  }

  // `meta` is `command`'s; filled from `origin`.
  virtual absl::StatusOr<runtime::v1::Reply> Execute(google::protobuf::Message& command,
                                                     runtime::v1::CommandMeta& meta,
                                                     const CommandOrigin& origin,
                                                     bool read_back) = 0;
};

// The one way a service writes (docs/architecture.md §3): a front sends a
// command to its service's processor, turns a rejection into its status,
// and waits until its read model has applied the command's last event, so
// that whatever the caller reads next from this replica has the write.
// Never waits past `timeout`. Thread-safe; a write before Start or after
// Stop is UNAVAILABLE.
class Front : public Writer {
 public:
  Front(kafka::SharedClients& kafka, ServiceTopics topics, EventFeed& events,
        absl::Duration timeout)
      : kafka_(kafka), topics_(std::move(topics)), events_(events), timeout_(timeout) {}

  // Starts reading the replies partition this front is answered on.
  absl::Status Start();
  // Writes from now on are UNAVAILABLE; those still waiting are answered
  // UNAVAILABLE once the sender goes (the last of them lets it go).
  void Stop();

  using Writer::Execute;
  absl::StatusOr<runtime::v1::Reply> Execute(google::protobuf::Message& command,
                                             runtime::v1::CommandMeta& meta,
                                             const CommandOrigin& origin, bool read_back) override;

  // Reads through `read`; when that finds nothing, waits (kCatchUpWait) for
  // the read model to apply everything in its topic now and reads again: a
  // write acknowledged by another replica moments ago is found here too.
  template <class Read>
  auto ReadOrCatchUp(Read read) -> decltype(read()) {
    return es::ReadOrCatchUp(events_, read);
  }
  // Waits until the read model has applied everything in its topic now.
  absl::Status WaitUntilCurrent(absl::Time deadline) { return events_.WaitUntilCurrent(deadline); }

 private:
  kafka::SharedClients& kafka_;
  const ServiceTopics topics_;
  absl::Mutex mutex_;
  std::shared_ptr<CommandSender> sender_ ABSL_GUARDED_BY(mutex_);
  EventFeed& events_;
  const absl::Duration timeout_;
};

}  // namespace helpline::es
