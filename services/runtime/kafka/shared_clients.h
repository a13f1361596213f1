#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/runtime/kafka/rdkafka_consumer.h"
#include "services/runtime/kafka/producer.h"

namespace helpline::kafka {

class Follower;

// One read_committed consumer without a group that a process shares for
// every partition it follows from an offset of its own choosing (its read
// models' topics, a front's replies partition): one client however many
// followers, each reading a queue of its own on its own thread. A partition
// is followed at most once at a time in a process.
class SharedReader {
 public:
  static absl::StatusOr<std::unique_ptr<SharedReader>> Create(const ClientConfig& client);
  ~SharedReader();

  // Starts reading these partitions at these offsets (kOffsetBeginning and
  // kOffsetEnd allowed). FAILED_PRECONDITION if one is followed already.
  absl::StatusOr<std::unique_ptr<Follower>> Follow(const std::vector<TopicPartitionOffset>& from);

  // For metadata and watermarks.
  Consumer& consumer() { return *consumer_; }

 private:
  friend class Follower;
  SharedReader() = default;
  void Unfollow(const std::vector<TopicPartitionOffset>& partitions);

  std::unique_ptr<RdKafkaConsumer> consumer_;
  absl::Mutex mutex_;
  std::set<std::pair<std::string, int32_t>> followed_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> stopping_{false};
  // Serves the consumer's own queue (client errors and logs); every
  // followed partition's records go to its follower's queue instead.
  std::thread poller_;
};

// Some partitions a SharedReader follows; they stop being read when this
// is destroyed.
class Follower {
 public:
  Follower(SharedReader& reader, std::vector<TopicPartitionOffset> partitions,
           std::unique_ptr<RecordQueue> queue);
  ~Follower();

  // The next record of these partitions, each partition in order.
  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout);
  // Offset of the next record of the partition (past transaction markers),
  // negative while not known yet.
  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition);
  Consumer& consumer() { return reader_.consumer(); }

 private:
  SharedReader& reader_;
  const std::vector<TopicPartitionOffset> partitions_;
  std::unique_ptr<RecordQueue> queue_;
};

// The Kafka clients a process shares: one idempotent producer for all it
// writes outside a processor's transaction (commands, reactions, dead
// letters) and one SharedReader for every partition it follows. With the
// processor's consumer and transactional producer and the reactors'
// consumer, a service holds five clients however many feeds it has.
struct SharedClients {
  static absl::StatusOr<std::unique_ptr<SharedClients>> Create(const ClientConfig& client);

  ClientConfig config;
  std::unique_ptr<Producer> producer;
  std::unique_ptr<SharedReader> reader;
};

}  // namespace helpline::kafka
