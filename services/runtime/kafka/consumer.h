#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/client.h"

namespace RdKafka {
class KafkaConsumer;
class Message;
class Queue;
}  // namespace RdKafka

namespace helpline::kafka {

// What a group rebalance did to this consumer's partitions: only the
// partitions that changed hands. `lost` means they were taken away without
// a chance to commit (the member was fenced): whatever was in flight for
// them must be abandoned, not committed.
struct Rebalance {
  bool assigned = false;
  std::vector<TopicPartitionOffset> partitions;
  bool lost = false;
};

struct ConsumerOptions {
  // Joins this consumer group (Subscribe) or names whose offsets Commit writes.
  std::string group_id;
  // Only records of committed transactions (and non-transactional ones); a
  // group member then also waits for offsets that a transaction is still
  // committing before it starts reading a partition.
  bool read_committed = true;
  // Where to start when the group has no committed offset.
  bool start_at_beginning = true;
  // The classic group protocol's session (the consumer protocol keeps it on
  // the broker: group.consumer.session.timeout.ms).
  absl::Duration session_timeout = absl::Seconds(10);
  // How long the broker may hold a fetch that found nothing. Short, because
  // a fetch waiting on a read_committed partition is not always answered
  // when a transaction commits.
  absl::Duration max_fetch_wait = absl::Milliseconds(500);
  // For Subscribe: called from Poll (or Close) on the polling thread when
  // partitions come or go. On assignment it runs after the partitions are
  // added; on revocation before they are removed, so work in flight for them
  // can be finished or dropped first.
  std::function<void(const Rebalance&)> on_rebalance;
  std::map<std::string, std::string> overrides;
};

class RecordQueue;

// A Kafka consumer: of partitions it is given (Assign, IncrementalAssign),
// or a member of a consumer group (Subscribe). Offsets are never committed
// automatically: the owner commits them itself or through a producer's
// transaction.
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(const ClientConfig& client,
                                                          const ConsumerOptions& options);
  ~Consumer();

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Replaces the assignment. Offsets may be kOffsetBeginning or kOffsetEnd.
  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions);
  // Adds partitions to, or removes them from, the assignment (not for a
  // group member outside its rebalance callback).
  absl::Status IncrementalAssign(const std::vector<TopicPartitionOffset>& partitions);
  absl::Status IncrementalUnassign(const std::vector<TopicPartitionOffset>& partitions);

  // Joins the group on these topics; partitions come and go through
  // ConsumerOptions::on_rebalance while Poll runs.
  absl::Status Subscribe(const std::vector<std::string>& topics);
  // Leaves the group (revoking what it owns through on_rebalance) and closes.
  void Close();

  // Stops and restarts fetching these assigned partitions.
  absl::Status Pause(const std::vector<TopicPartitionOffset>& partitions);
  absl::Status Resume(const std::vector<TopicPartitionOffset>& partitions);

  // Moves the position of an assigned partition.
  absl::Status Seek(const TopicPartitionOffset& position, absl::Duration timeout);

  // Offset of the next record this consumer will read from the partition
  // (past transaction markers), or a negative value when not yet known.
  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition);

  // A queue that partitions can be routed to (Route), so that a thread of
  // its own reads them instead of Poll. Valid while this consumer lives.
  std::unique_ptr<RecordQueue> NewQueue();
  // From now on the partition's records go to `queue`. Route before
  // assigning, so that none reaches Poll first.
  absl::Status Route(const std::string& topic, int32_t partition, RecordQueue& queue);
  // Ends Route: the partition's records go nowhere until routed again.
  void Unroute(const std::string& topic, int32_t partition);

  // The next record of the partitions not routed elsewhere, or nullopt when
  // none came within `timeout`. Errors the client recovers from on its own
  // (a broker restarting) come back as UNAVAILABLE; the caller may log them
  // and go on polling.
  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout);

  // Partition count of an existing topic; FAILED_PRECONDITION naming it if
  // it does not exist.
  absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout);
  // Low and high watermark (the offset the next record will get).
  absl::StatusOr<std::pair<int64_t, int64_t>> WatermarkOffsets(const std::string& topic,
                                                               int32_t partition,
                                                               absl::Duration timeout);
  // Where each partition of `topic` ends for this consumer: the last stable
  // offset when read_committed (what it can read now), else the high
  // watermark. One request for all partitions.
  absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& topic, int partitions,
                                                  absl::Duration timeout);
  // The high watermark as last fetched (no broker round trip); nullopt
  // before the first fetch of the partition.
  std::optional<int64_t> CachedHighWatermark(const std::string& topic, int32_t partition);

  // The group's committed offsets for these partitions (offset -1001 where
  // none); with read_committed, once no transaction is still committing them.
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout);
  absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets);

  RdKafka::KafkaConsumer* native() { return consumer_.get(); }

 private:
  class RebalanceAdapter;
  Consumer() = default;
  std::unique_ptr<RebalanceAdapter> rebalance_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<internal::BrokerWatch> broker_watch_;
  bool closed_ = false;
};

// See Consumer::NewQueue.
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
