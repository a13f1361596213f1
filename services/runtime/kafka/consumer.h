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

// A Kafka consumer: of partitions it is given (Assign, IncrementalAssign),
// or a member of a consumer group (Subscribe). Offsets are never committed
// automatically: the owner commits them itself or through a producer's
// transaction. RdKafkaConsumer is the real one; kafka::testing::FakeKafka
// makes in-memory ones for unit tests.
class Consumer {
 public:
  // A consumer of the cluster `client` names (an RdKafkaConsumer).
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(const ClientConfig& client,
                                                          const ConsumerOptions& options);
  Consumer() = default;
  virtual ~Consumer() = default;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Replaces the assignment. Offsets may be kOffsetBeginning or kOffsetEnd.
  virtual absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) = 0;
  // Adds partitions to, or removes them from, the assignment (not for a
  // group member outside its rebalance callback).
  virtual absl::Status IncrementalAssign(const std::vector<TopicPartitionOffset>& partitions) = 0;
  virtual absl::Status IncrementalUnassign(const std::vector<TopicPartitionOffset>& partitions) = 0;

  // Joins the group on these topics; partitions come and go through
  // ConsumerOptions::on_rebalance while Poll runs.
  virtual absl::Status Subscribe(const std::vector<std::string>& topics) = 0;
  // Leaves the group (revoking what it owns through on_rebalance) and closes.
  virtual void Close() = 0;

  // Stops and restarts fetching these assigned partitions.
  virtual absl::Status Pause(const std::vector<TopicPartitionOffset>& partitions) = 0;
  virtual absl::Status Resume(const std::vector<TopicPartitionOffset>& partitions) = 0;

  // Moves the position of an assigned partition.
  virtual absl::Status Seek(const TopicPartitionOffset& position, absl::Duration timeout) = 0;

  // Offset of the next record this consumer will read from the partition
  // (past transaction markers), or a negative value when not yet known.
  virtual absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) = 0;

  // The next record of the assigned partitions, or nullopt when none came
  // within `timeout`. Errors the client recovers from on its own (a broker
  // restarting) come back as UNAVAILABLE; the caller may log them and go on
  // polling.
  virtual absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout) = 0;

  // Partition count of an existing topic; FAILED_PRECONDITION naming it if
  // it does not exist.
  virtual absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout) = 0;
  // Low and high watermark (the offset the next record will get).
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> WatermarkOffsets(const std::string& topic,
                                                                       int32_t partition,
                                                                       absl::Duration timeout) = 0;
  // Where each partition of `topic` ends for this consumer: the last stable
  // offset when read_committed (what it can read now), else the high
  // watermark. One request for all partitions.
  virtual absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& topic, int partitions,
                                                          absl::Duration timeout) = 0;
  // The high watermark as last fetched (no broker round trip); nullopt
  // before the first fetch of the partition.
  virtual std::optional<int64_t> CachedHighWatermark(const std::string& topic,
                                                     int32_t partition) = 0;

  // The group's committed offsets for these partitions (offset -1001 where
  // none); with read_committed, once no transaction is still committing them.
  virtual absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) = 0;
  virtual absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets) = 0;
};

}  // namespace helpline::kafka
