#include "services/runtime/eventsourcing/command_sender.h"

#include <future>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/server/log.h"

namespace helpline::es {
namespace {

}  // namespace

CommandSender::CommandSender(CommandSenderOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<CommandSender>> CommandSender::Create(
    const kafka::ClientConfig& client, CommandSenderOptions options) {
  if (options.instance_id.empty()) options.instance_id = ids::NewUuidV7();
  std::unique_ptr<CommandSender> sender(new CommandSender(std::move(options)));
  const std::string& replies = sender->options_.topics.replies;

  absl::StatusOr<int> partitions = kafka::PartitionCount(client, replies);
  if (!partitions.ok()) return partitions.status();
  sender->reply_partition_ =
      static_cast<int32_t>(absl::Hash<std::string>{}(sender->options_.instance_id) % *partitions);

  kafka::ProducerOptions producer_options;
  producer_options.linger = absl::Milliseconds(1);
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
      kafka::Producer::Create(client, producer_options);
  if (!producer.ok()) return producer.status();
  if (absl::Status warm = (*producer)->WarmUp({sender->options_.topics.commands}, absl::Seconds(10));
      !warm.ok()) {
    return warm;
  }
  sender->producer_ = *std::move(producer);

  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer =
      kafka::Consumer::Create(client, kafka::ConsumerOptions{});
  if (!consumer.ok()) return consumer.status();
  sender->replies_ = *std::move(consumer);
  // Start exactly at today's end: every reply to a command sent from now on
  // comes after it.
  absl::StatusOr<std::pair<int64_t, int64_t>> watermarks =
      sender->replies_->WatermarkOffsets(replies, sender->reply_partition_, absl::Seconds(30));
  if (!watermarks.ok()) return watermarks.status();
  if (absl::Status s = sender->replies_->Assign({{replies, sender->reply_partition_, watermarks->second}});
      !s.ok()) {
    return s;
  }
  CommandSender* self = sender.get();
  sender->reader_ = std::thread([self] { self->ReadReplies(); });
  return sender;
}

CommandSender::~CommandSender() {
  stopping_.store(true);
  if (reader_.joinable()) reader_.join();
  std::multimap<std::string, Waiter> left;
  {
    absl::MutexLock lock(&mutex_);
    left.swap(waiting_);
    deadlines_.clear();
  }
  for (auto& [id, waiter] : left) waiter.done(absl::UnavailableError("the front is shutting down"));
}

void CommandSender::SendAsync(google::protobuf::Message& command, runtime::v1::CommandMeta& meta,
                              absl::Time deadline, ReplyCallback done) {
  meta.set_reply_to(options_.instance_id);
  meta.set_reply_partition(reply_partition_);
  *meta.mutable_sent_at() = ToProtoTime(absl::Now());
  *meta.mutable_deadline() = ToProtoTime(deadline);
  std::string command_id = meta.command_id();
  {
    absl::MutexLock lock(&mutex_);
    waiting_.emplace(command_id, Waiter{std::move(done), deadlines_.emplace(deadline, command_id)});
  }
  kafka::OutgoingRecord record{options_.topics.commands, std::nullopt, meta.aggregate_id(),
                               command.SerializeAsString(), {}};
  if (!meta.traceparent().empty()) record.headers.push_back({"traceparent", meta.traceparent()});
  absl::Status queued = producer_->Produce(record, [this, command_id](const kafka::Delivery& d) {
    if (!d.status.ok()) Finish(command_id, absl::UnavailableError(d.status.message()));
  });
  if (!queued.ok()) Finish(command_id, absl::UnavailableError(queued.message()));
}

absl::StatusOr<runtime::v1::Reply> CommandSender::Send(google::protobuf::Message& command,
                                                       runtime::v1::CommandMeta& meta,
                                                       absl::Time deadline) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<runtime::v1::Reply>>>();
  std::future<absl::StatusOr<runtime::v1::Reply>> future = promise->get_future();
  SendAsync(command, meta, deadline,
            [promise](absl::StatusOr<runtime::v1::Reply> outcome) { promise->set_value(outcome); });
  return future.get();
}

void CommandSender::Finish(const std::string& command_id,
                           const absl::StatusOr<runtime::v1::Reply>& outcome) {
  std::vector<ReplyCallback> callbacks;
  {
    absl::MutexLock lock(&mutex_);
    auto [begin, end] = waiting_.equal_range(command_id);
    for (auto it = begin; it != end; ++it) {
      callbacks.push_back(std::move(it->second.done));
      deadlines_.erase(it->second.deadline);
    }
    waiting_.erase(begin, end);
  }
  for (ReplyCallback& callback : callbacks) callback(outcome);
}

void CommandSender::ReadReplies() {
  while (!stopping_.load()) {
    absl::StatusOr<std::optional<kafka::Record>> record =
        replies_->Poll(absl::Milliseconds(10));
    if (!record.ok()) {
      log::Warn("reading replies", {{"error", record.status().ToString()}});
    } else if (record->has_value()) {
      runtime::v1::Reply reply;
      if (reply.ParseFromString((*record)->value)) {
        Finish(reply.command_id(), reply);
      } else {
        log::Error("undecodable reply skipped", {{"offset", (*record)->offset}});
      }
    }
    std::vector<std::pair<std::string, ReplyCallback>> expired;
    absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mutex_);
      while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        std::string id = deadlines_.begin()->second;
        auto [begin, end] = waiting_.equal_range(id);
        for (auto it = begin; it != end;) {
          if (it->second.deadline == deadlines_.begin()) {
            expired.emplace_back(id, std::move(it->second.done));
            it = waiting_.erase(it);
          } else {
            ++it;
          }
        }
        deadlines_.erase(deadlines_.begin());
      }
    }
    for (auto& [id, done] : expired) {
      done(absl::DeadlineExceededError(absl::StrCat(
          "no reply to command ", id, " before the deadline; it may still take effect, and a "
          "retry with the same request id gets its outcome")));
    }
  }
}

}  // namespace helpline::es
