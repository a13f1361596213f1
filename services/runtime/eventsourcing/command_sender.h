#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/shared_clients.h"

namespace helpline::es {

struct CommandSenderOptions {
  ServiceTopics topics;
  // Names this front on the replies topic; a new UUIDv7 when empty.
  std::string instance_id;
};

// A front's side of the command path: produces a command (the process's
// shared idempotent producer, acks=all) and waits for the processor's Reply
// on the replies partition this front follows. Never waits past the deadline.
class CommandSender {
 public:
  static absl::StatusOr<std::unique_ptr<CommandSender>> Create(kafka::SharedClients& kafka,
                                                               CommandSenderOptions options);
  // Answers every call still waiting with UNAVAILABLE.
  ~CommandSender();

  using ReplyCallback = std::function<void(absl::StatusOr<runtime::v1::Reply>)>;

  // `meta` belongs to `command` and has command_id and aggregate_id set; the
  // sender fills in where to reply and the times. `done` runs once, on one of
  // the sender's threads: with the Reply (whatever its code), or with
  // DEADLINE_EXCEEDED (no reply in time: the command may still be handled; a
  // retry with the same command id gets its first outcome) or UNAVAILABLE
  // (Kafka did not take the command, or the sender is shutting down).
  void SendAsync(google::protobuf::Message& command, runtime::v1::CommandMeta& meta,
                 absl::Time deadline, ReplyCallback done);
  absl::StatusOr<runtime::v1::Reply> Send(google::protobuf::Message& command,
                                          runtime::v1::CommandMeta& meta, absl::Time deadline);

  // For a service's generated Command type (a `meta` field).
  template <class Command>
  absl::StatusOr<runtime::v1::Reply> Send(Command& command, absl::Time deadline) {
    return Send(command, *command.mutable_meta(), deadline);
  }

  const std::string& instance_id() const { return options_.instance_id; }
  int32_t reply_partition() const { return reply_partition_; }

 private:
  // The calls waiting for their reply. Shared with the producer's delivery
  // callbacks, which can run after the sender is gone (the producer is the
  // process's).
  class Waiting;

  CommandSender(kafka::SharedClients& kafka, CommandSenderOptions options);
  void ReadReplies();

  kafka::SharedClients& kafka_;
  CommandSenderOptions options_;
  int32_t reply_partition_ = 0;
  std::shared_ptr<Waiting> waiting_;
  std::unique_ptr<kafka::Follower> replies_;
  std::atomic<bool> stopping_{false};
  std::thread reader_;
};

}  // namespace helpline::es
