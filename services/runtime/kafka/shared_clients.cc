#include "services/runtime/kafka/shared_clients.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/server/log.h"

namespace helpline::kafka {

absl::StatusOr<std::unique_ptr<SharedReader>> SharedReader::Create(const ClientConfig& client) {
  absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> consumer =
      RdKafkaConsumer::Create(client, ConsumerOptions{});
  if (!consumer.ok()) return consumer.status();
  std::unique_ptr<SharedReader> reader(new SharedReader());
  reader->consumer_ = *std::move(consumer);
  SharedReader* self = reader.get();
  reader->poller_ = std::thread([self] {
    while (!self->stopping_.load()) {
      absl::StatusOr<std::optional<Record>> polled = self->consumer_->Poll(absl::Milliseconds(200));
      if (!polled.ok()) log::Warn("shared reader", {{"error", polled.status().ToString()}});
    }
  });
  return reader;
}

SharedReader::~SharedReader() {
  stopping_.store(true);
  if (poller_.joinable()) poller_.join();
}

absl::StatusOr<std::unique_ptr<Follower>> SharedReader::Follow(
    const std::vector<TopicPartitionOffset>& from) {
  {
    absl::MutexLock lock(&mutex_);
    for (const TopicPartitionOffset& partition : from) {
      if (followed_.count({partition.topic, partition.partition}) > 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            partition.topic, "/", partition.partition, " is followed already in this process"));
      }
    }
    for (const TopicPartitionOffset& partition : from) {
      followed_.insert({partition.topic, partition.partition});
    }
  }
  std::unique_ptr<RecordQueue> queue = consumer_->NewQueue();
  for (const TopicPartitionOffset& partition : from) {
    if (absl::Status routed = consumer_->Route(partition.topic, partition.partition, *queue);
        !routed.ok()) {
      Unfollow(from);
      return routed;
    }
  }
  if (absl::Status assigned = consumer_->IncrementalAssign(from); !assigned.ok()) {
    Unfollow(from);
    return assigned;
  }
  return std::make_unique<Follower>(*this, from, std::move(queue));
}

void SharedReader::Unfollow(const std::vector<TopicPartitionOffset>& partitions) {
  consumer_->IncrementalUnassign(partitions).IgnoreError();
  absl::MutexLock lock(&mutex_);
  for (const TopicPartitionOffset& partition : partitions) {
    consumer_->Unroute(partition.topic, partition.partition);
    followed_.erase({partition.topic, partition.partition});
  }
}

Follower::Follower(SharedReader& reader, std::vector<TopicPartitionOffset> partitions,
                   std::unique_ptr<RecordQueue> queue)
    : reader_(reader), partitions_(std::move(partitions)), queue_(std::move(queue)) {}

Follower::~Follower() { reader_.Unfollow(partitions_); }

absl::StatusOr<std::optional<Record>> Follower::Poll(absl::Duration timeout) {
  return queue_->Poll(timeout);
}

absl::StatusOr<int64_t> Follower::Position(const std::string& topic, int32_t partition) {
  return reader_.consumer().Position(topic, partition);
}

absl::StatusOr<std::unique_ptr<SharedClients>> SharedClients::Create(const ClientConfig& client) {
  auto clients = std::make_unique<SharedClients>();
  clients->config = client;
  ProducerOptions producer_options;
  // Commands wait for their reply: send at once, a millisecond's batching.
  producer_options.linger = absl::Milliseconds(1);
  absl::StatusOr<std::unique_ptr<Producer>> producer = Producer::Create(client, producer_options);
  if (!producer.ok()) return producer.status();
  clients->producer = *std::move(producer);
  absl::StatusOr<std::unique_ptr<SharedReader>> reader = SharedReader::Create(client);
  if (!reader.ok()) return reader.status();
  clients->reader = *std::move(reader);
  return clients;
}

}  // namespace helpline::kafka
