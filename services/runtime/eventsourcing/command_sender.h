#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/producer.h"

namespace helpline::es {

struct CommandSenderOptions {
  ServiceTopics topics;
  // Names this front on the replies topic; a new UUIDv7 when empty.
  std::string instance_id;
};

// A front's side of the command path: produces a command (idempotent
// producer, acks=all) and waits for the processor's Reply on the replies
// partition this front reads. Never waits past the deadline.
class CommandSender {
 public:
  static absl::StatusOr<std::unique_ptr<CommandSender>> Create(const kafka::ClientConfig& client,
                                                               CommandSenderOptions options);
  ~CommandSender();

  using ReplyCallback = std::function<void(absl::StatusOr<runtime::v1::Reply>)>;

  // `meta` belongs to `command` and has command_id and aggregate_id set; the
  // sender fills in where to reply and the times. `done` runs once, on one of
  // the sender's threads: with the Reply (whatever its code), or with
  // DEADLINE_EXCEEDED (no reply in time: the command may still be handled; a
  // retry with the same command id gets its first outcome) or UNAVAILABLE
  // (Kafka did not take the command).
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
  struct Waiter {
    ReplyCallback done;
    std::multimap<absl::Time, std::string>::iterator deadline;
  };

  explicit CommandSender(CommandSenderOptions options);
  void ReadReplies();
  void Finish(const std::string& command_id, const absl::StatusOr<runtime::v1::Reply>& outcome);

  CommandSenderOptions options_;
  int32_t reply_partition_ = 0;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::Consumer> replies_;
  absl::Mutex mutex_;
  std::multimap<std::string, Waiter> waiting_ ABSL_GUARDED_BY(mutex_);
  // The same waiters by deadline (command id), earliest first.
  std::multimap<absl::Time, std::string> deadlines_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> stopping_{false};
  std::thread reader_;
};

}  // namespace helpline::es
