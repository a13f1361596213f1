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
}

namespace helpline::kafka {

// What a group rebalance did to this consumer's partitions. `lost` means
// they were taken away without a chance to commit (the session expired):
// whatever was in flight for them must be abandoned, not committed.
struct Rebalance {
  bool assigned = false;
  std::vector<TopicPartitionOffset> partitions;
  bool lost = false;
};

struct ConsumerOptions {
  // Needed to commit offsets (directly or through a transaction).
  std::string group_id;
  // Only records of committed transactions (and non-transactional ones).
  bool read_committed = true;
  // Where to start when the group has no committed offset.
  bool start_at_beginning = true;
  absl::Duration session_timeout = absl::Seconds(10);
  // How long the broker may hold a fetch that found nothing. Short, because
  // a fetch waiting on a read_committed partition is not always answered
  // when a transaction commits (seen: a whole 500 ms default).
  absl::Duration max_fetch_wait = absl::Milliseconds(200);
  // For Subscribe: called from Poll when partitions come or go. On
  // assignment it runs after the partitions are assigned; on revocation
  // before they are released, so work in flight can be finished first.
  std::function<void(const Rebalance&)> on_rebalance;
  std::map<std::string, std::string> overrides;
};

class PartitionReader;

// A Kafka consumer that reads partitions it is given (Assign). Offsets are
// never committed automatically: a reader commits them itself or through a
// producer's transaction.
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(const ClientConfig& client,
                                                          const ConsumerOptions& options);
  ~Consumer();

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Replaces the assignment. Offsets may be kOffsetBeginning or kOffsetEnd.
  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions);

  // Joins the group on these topics; partitions come and go through
  // ConsumerOptions::on_rebalance while Poll runs.
  absl::Status Subscribe(const std::vector<std::string>& topics);

  // Moves the position of an assigned partition.
  absl::Status Seek(const TopicPartitionOffset& position, absl::Duration timeout);

  // Offset of the next record this consumer will read from the partition
  // (past transaction markers), or a negative value when not yet known.
  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition);

  // Records of one assigned partition, taken out of Poll's stream so that a
  // thread of its own can read them. Valid until the partition is unassigned.
  std::unique_ptr<PartitionReader> ReadPartitionSeparately(const std::string& topic,
                                                           int32_t partition);

  // The next record, or nullopt when none came within `timeout`. Errors the
  // client recovers from on its own (a broker restarting) come back as
  // UNAVAILABLE; the caller may log them and go on polling.
  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout);

  // Low and high watermark (the offset the next record will get).
  absl::StatusOr<std::pair<int64_t, int64_t>> WatermarkOffsets(const std::string& topic,
                                                               int32_t partition,
                                                               absl::Duration timeout);
  // The high watermark as last fetched (no broker round trip); nullopt
  // before the first fetch of the partition.
  std::optional<int64_t> CachedHighWatermark(const std::string& topic, int32_t partition);

  // The group's committed offsets for these partitions (offset -1001 where none).
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout);
  absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets);

  RdKafka::KafkaConsumer* native() { return consumer_.get(); }

 private:
  class RebalanceAdapter;
  Consumer() = default;
  std::unique_ptr<RebalanceAdapter> rebalance_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

// See Consumer::ReadPartitionSeparately.
class PartitionReader {
 public:
  explicit PartitionReader(std::unique_ptr<RdKafka::Queue> queue);
  ~PartitionReader();
  // As Consumer::Poll, for this partition only.
  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout);

 private:
  std::unique_ptr<RdKafka::Queue> queue_;
};

namespace internal {
// nullopt for "no record" (timeout, end of partition); an error status for errors.
absl::StatusOr<std::optional<Record>> ToRecord(RdKafka::Message& message);
}  // namespace internal

}  // namespace helpline::kafka
