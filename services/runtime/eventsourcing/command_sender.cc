#include "services/runtime/eventsourcing/command_sender.h"

#include <functional>
#include <future>
#include <queue>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/server/log.h"

namespace helpline::es {

class CommandSender::Waiting {
 public:
  // False once closed: the caller must answer `done` itself.
  bool Add(const std::string& command_id, absl::Time deadline, ReplyCallback done) {
    absl::MutexLock lock(&mutex_);
    if (closed_) return false;
    const uint64_t number = next_number_++;
    waiters_[command_id].push_back({std::move(done), number});
    deadlines_.push({deadline, number, command_id});
    return true;
  }

  // Answers every waiter of this command id.
  void Finish(const std::string& command_id, const absl::StatusOr<runtime::v1::Reply>& outcome) {
    std::vector<Waiter> finished;
    {
      absl::MutexLock lock(&mutex_);
      auto found = waiters_.find(command_id);
      if (found == waiters_.end()) return;
      finished = std::move(found->second);
      waiters_.erase(found);
    }
    for (Waiter& waiter : finished) waiter.done(outcome);
  }

  // Answers the waiters whose deadline passed.
  void Expire(absl::Time now) {
    std::vector<std::pair<std::string, ReplyCallback>> expired;
    {
      absl::MutexLock lock(&mutex_);
      while (!deadlines_.empty() && deadlines_.top().at <= now) {
        const Deadline due = deadlines_.top();
        deadlines_.pop();
        auto found = waiters_.find(due.command_id);
        if (found == waiters_.end()) continue;  // answered already
        std::vector<Waiter>& waiters = found->second;
        for (auto it = waiters.begin(); it != waiters.end(); ++it) {
          if (it->number != due.number) continue;
          expired.emplace_back(due.command_id, std::move(it->done));
          waiters.erase(it);
          break;
        }
        if (waiters.empty()) waiters_.erase(found);
      }
    }
    for (auto& [id, done] : expired) {
      done(absl::DeadlineExceededError(absl::StrCat(
          "no reply to command ", id, " before the deadline; it may still take effect, and a "
          "retry with the same request id gets its outcome")));
    }
  }

  // Answers everyone still waiting; later Adds and Finishes do nothing.
  void Close() {
    absl::flat_hash_map<std::string, std::vector<Waiter>> left;
    {
      absl::MutexLock lock(&mutex_);
      closed_ = true;
      left.swap(waiters_);
      deadlines_ = {};
    }
    for (auto& [id, waiters] : left) {
      for (Waiter& waiter : waiters) waiter.done(absl::UnavailableError("the front is shutting down"));
    }
  }

 private:
  struct Waiter {
    ReplyCallback done;
    uint64_t number;
  };
  struct Deadline {
    absl::Time at;
    uint64_t number;
    std::string command_id;
    bool operator>(const Deadline& other) const { return at > other.at; }
  };

  absl::Mutex mutex_;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t next_number_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::flat_hash_map<std::string, std::vector<Waiter>> waiters_ ABSL_GUARDED_BY(mutex_);
  // Every waiter's deadline, earliest on top; those answered already are
  // dropped when they come due.
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_
      ABSL_GUARDED_BY(mutex_);
};

CommandSender::CommandSender(kafka::SharedClients& kafka, CommandSenderOptions options)
    : kafka_(kafka), options_(std::move(options)), waiting_(std::make_shared<Waiting>()) {}

absl::StatusOr<std::unique_ptr<CommandSender>> CommandSender::Create(kafka::SharedClients& kafka,
                                                                     CommandSenderOptions options) {
  if (options.instance_id.empty()) options.instance_id = ids::NewUuidV7();
  std::unique_ptr<CommandSender> sender(new CommandSender(kafka, std::move(options)));
  const std::string& replies = sender->options_.topics.replies;
  kafka::Consumer& reader = kafka.reader->consumer();
  absl::StatusOr<int> partitions = reader.PartitionCount(replies, absl::Seconds(30));
  if (!partitions.ok()) return partitions.status();
  sender->reply_partition_ =
      static_cast<int32_t>(absl::Hash<std::string>{}(sender->options_.instance_id) % *partitions);
  if (absl::Status warm = kafka.producer->WarmUp({sender->options_.topics.commands}, absl::Seconds(10));
      !warm.ok()) {
    return warm;
  }
  // Start exactly at today's end: every reply to a command sent from now on
  // comes after it.
  absl::StatusOr<std::pair<int64_t, int64_t>> watermarks =
      reader.WatermarkOffsets(replies, sender->reply_partition_, absl::Seconds(30));
  if (!watermarks.ok()) return watermarks.status();
  absl::StatusOr<std::unique_ptr<kafka::Follower>> follower =
      kafka.reader->Follow({{replies, sender->reply_partition_, watermarks->second}});
  if (!follower.ok()) return follower.status();
  sender->replies_ = *std::move(follower);
  CommandSender* self = sender.get();
  sender->reader_ = std::thread([self] { self->ReadReplies(); });
  return sender;
}

CommandSender::~CommandSender() {
  stopping_.store(true);
  if (reader_.joinable()) reader_.join();
  replies_.reset();
  waiting_->Close();
}

void CommandSender::SendAsync(google::protobuf::Message& command, runtime::v1::CommandMeta& meta,
                              absl::Time deadline, ReplyCallback done) {
  meta.set_reply_to(options_.instance_id);
  meta.set_reply_partition(reply_partition_);
  *meta.mutable_sent_at() = ToProtoTime(absl::Now());
  *meta.mutable_deadline() = ToProtoTime(deadline);
  std::string command_id = meta.command_id();
  if (!waiting_->Add(command_id, deadline, done)) {
    done(absl::UnavailableError("the front is shutting down"));
    return;
  }
  kafka::OutgoingRecord record{options_.topics.commands, std::nullopt, meta.aggregate_id(),
                               command.SerializeAsString(), {}};
  if (!meta.traceparent().empty()) record.headers.push_back({"traceparent", meta.traceparent()});
  std::shared_ptr<Waiting> waiting = waiting_;
  absl::Status queued =
      kafka_.producer->Produce(record, [waiting, command_id](const kafka::Delivery& d) {
        if (!d.status.ok()) waiting->Finish(command_id, absl::UnavailableError(d.status.message()));
      });
  if (!queued.ok()) waiting_->Finish(command_id, absl::UnavailableError(queued.message()));
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

void CommandSender::ReadReplies() {
  while (!stopping_.load()) {
    absl::StatusOr<std::optional<kafka::Record>> record = replies_->Poll(absl::Milliseconds(10));
    if (!record.ok()) {
      log::Warn("reading replies", {{"error", record.status().ToString()}});
    } else if (record->has_value()) {
      runtime::v1::Reply reply;
      if (reply.ParseFromString((*record)->value)) {
        waiting_->Finish(reply.command_id(), reply);
      } else {
        log::Error("undecodable reply skipped", {{"offset", (*record)->offset}});
      }
    }
    waiting_->Expire(absl::Now());
  }
}

}  // namespace helpline::es
