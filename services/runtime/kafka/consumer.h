#pragma once

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
}

namespace helpline::kafka {

struct ConsumerOptions {
  // Needed to commit offsets (directly or through a transaction).
  std::string group_id;
  // Only records of committed transactions (and non-transactional ones).
  bool read_committed = true;
  // Where to start when the group has no committed offset.
  bool start_at_beginning = true;
  absl::Duration session_timeout = absl::Seconds(10);
  std::map<std::string, std::string> overrides;
};

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

  // The next record, or nullopt when none came within `timeout`. Errors the
  // client recovers from on its own (a broker restarting) come back as
  // UNAVAILABLE; the caller may log them and go on polling.
  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout);

  // Low and high watermark (the offset the next record will get).
  absl::StatusOr<std::pair<int64_t, int64_t>> WatermarkOffsets(const std::string& topic,
                                                               int32_t partition,
                                                               absl::Duration timeout);

  // The group's committed offsets for these partitions (offset -1001 where none).
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout);
  absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets);

  RdKafka::KafkaConsumer* native() { return consumer_.get(); }

 private:
  Consumer() = default;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

}  // namespace helpline::kafka
