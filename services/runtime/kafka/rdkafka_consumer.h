#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/kafka/consumer.h"

namespace RdKafka {
class KafkaConsumer;
class Message;
class Queue;
}  // namespace RdKafka

namespace helpline::kafka {

class RecordQueue;

// The Consumer of a real cluster, through librdkafka. Beyond the interface,
// its partitions can be read on threads of their own (NewQueue, Route).
class RdKafkaConsumer final : public Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> Create(const ClientConfig& client,
                                                                 const ConsumerOptions& options);
  ~RdKafkaConsumer() override;


  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override;
  absl::Status IncrementalAssign(const std::vector<TopicPartitionOffset>& partitions) override;
  absl::Status IncrementalUnassign(const std::vector<TopicPartitionOffset>& partitions) override;
  absl::Status Subscribe(const std::vector<std::string>& topics) override;
  void Close() override;
  absl::Status Pause(const std::vector<TopicPartitionOffset>& partitions) override;
  absl::Status Resume(const std::vector<TopicPartitionOffset>& partitions) override;
  absl::Status Seek(const TopicPartitionOffset& position, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) override;
  // Of the partitions not routed elsewhere.
  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout) override;
  absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout) override;
  absl::StatusOr<std::pair<int64_t, int64_t>> WatermarkOffsets(const std::string& topic,
                                                               int32_t partition,
                                                               absl::Duration timeout) override;
  absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& topic, int partitions,
                                                  absl::Duration timeout) override;
  std::optional<int64_t> CachedHighWatermark(const std::string& topic, int32_t partition) override;
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) override;
  absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets) override;

  // A queue that partitions can be routed to (Route), so that a thread of
  // its own reads them instead of Poll. Valid while this consumer lives.
  std::unique_ptr<RecordQueue> NewQueue();
  // From now on the partition's records go to `queue`. Route before
  // assigning, so that none reaches Poll first.
  absl::Status Route(const std::string& topic, int32_t partition, RecordQueue& queue);
  // Ends Route: the partition's records go nowhere until routed again.
  void Unroute(const std::string& topic, int32_t partition);

  RdKafka::KafkaConsumer* native() { return consumer_.get(); }

 private:
  class RebalanceAdapter;
  RdKafkaConsumer() = default;
  std::unique_ptr<RebalanceAdapter> rebalance_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<internal::BrokerWatch> broker_watch_;
  bool closed_ = false;
};

// See RdKafkaConsumer::NewQueue.
class RecordQueue {
 public:
  explicit RecordQueue(std::unique_ptr<RdKafka::Queue> queue);
  ~RecordQueue();
  // As Consumer::Poll, for the partitions routed here.
  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout);
  RdKafka::Queue* native() { return queue_.get(); }

 private:
  std::unique_ptr<RdKafka::Queue> queue_;
};

namespace internal {
// nullopt for "no record" (timeout, end of partition); an error status for errors.
absl::StatusOr<std::optional<Record>> ToRecord(RdKafka::Message& message);
}  // namespace internal

}  // namespace helpline::kafka
