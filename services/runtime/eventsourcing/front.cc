#include "services/runtime/eventsourcing/front.h"

#include "absl/time/clock.h"
#include "services/runtime/core/errors.h"

namespace helpline::es {

absl::Status Front::Start() {
  absl::StatusOr<std::unique_ptr<CommandSender>> sender = CommandSender::Create(kafka_, {topics_, ""});
  if (!sender.ok()) return sender.status();
  absl::MutexLock lock(&mutex_);
  sender_ = std::shared_ptr<CommandSender>(*std::move(sender));
  return absl::OkStatus();
}

void Front::Stop() {
  std::shared_ptr<CommandSender> stopping;
  {
    absl::MutexLock lock(&mutex_);
    stopping.swap(sender_);
  }
}

absl::StatusOr<runtime::v1::Reply> Front::Execute(google::protobuf::Message& command,
                                                  runtime::v1::CommandMeta& meta,
                                                  const CommandOrigin& origin, bool read_back) {
  const absl::Time deadline = absl::Now() + timeout_;
  meta.set_aggregate_id(origin.aggregate_id);
  meta.set_command_id(origin.command_id);
  if (meta.correlation_id().empty()) meta.set_correlation_id(origin.command_id);
  meta.set_expected_version(origin.expected_version);
  if (origin.user_id.empty()) {
    meta.mutable_actor()->set_system(origin.system);
  } else {
    meta.mutable_actor()->set_user_id(origin.user_id);
  }
  std::shared_ptr<CommandSender> sender;
  {
    absl::MutexLock lock(&mutex_);
    sender = sender_;
  }
  if (sender == nullptr) return absl::UnavailableError("not started yet, or stopping");
  absl::StatusOr<runtime::v1::Reply> reply = sender->Send(command, meta, deadline);
  if (!reply.ok()) return reply.status();
  if (absl::Status status = errors::FromReply(*reply); !status.ok()) return status;
  if (read_back && reply->aggregate_version() > 0) {
    absl::Status applied =
        events_.WaitForVersion(reply->aggregate_id(), reply->aggregate_version(), deadline);
    if (!applied.ok()) return applied;
  }
  return reply;
}

}  // namespace helpline::es
