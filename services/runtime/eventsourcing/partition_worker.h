#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/partition_state.h"
#include "services/runtime/eventsourcing/processor_metrics.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/producer.h"

namespace helpline::es {

struct ProcessorOptions {
  std::string service;  // "identity": group "<service>-processor", ids "<service>-processor-<p>"
  ServiceTopics topics;
  // A transaction closes after this many commands or this long after its first.
  int max_batch_commands = 500;
  absl::Duration max_batch_wait = absl::Milliseconds(2);
  // With no command coming, a worker wakes for its next timer, and at least
  // this often; `clock_rate` (clock.rate) turns a timer's service time into
  // real time.
  absl::Duration idle_poll = absl::Milliseconds(100);
  double clock_rate = 1;
  // Backstop for a killed processor's open transaction; a new owner aborts it
  // at once anyway (fencing).
  absl::Duration transaction_timeout = absl::Seconds(10);
  absl::Duration session_timeout = absl::Seconds(10);
  // How long a command id is remembered, so that a retry gets the first
  // outcome, and how many at most per aggregate (the newest); memory and
  // snapshots grow with both.
  absl::Duration dedupe_window = absl::Hours(24);
  size_t max_handled_per_aggregate = 10000;
  // A partition's snapshot is refreshed after this many events, or after
  // this long if anything changed.
  int64_t snapshot_every_events = 100000;
  absl::Duration snapshot_interval = absl::Minutes(5);
  // After being fenced, how long a worker waits before taking its
  // partition back (see PartitionWorker::HandleFencing).
  absl::Duration fencing_backoff = absl::Seconds(1);
  // Largest event a command may produce (the broker takes 1 MB records).
  size_t max_event_bytes = 900 * 1024;
  // A larger aggregate's snapshot is written in parts of at most this size
  // (under the broker's 1 MB record limit).
  size_t snapshot_part_bytes = 512 * 1024;
  // Tests: own these partitions without joining the consumer group.
  std::vector<int32_t> static_partitions;
};

// The single writer of one commands partition: rebuilds the partition's
// aggregates from the snapshot and the events, then decides commands in
// batches, each batch one Kafka transaction with its events, replies and the
// commands' consumed offset. Owns one transactional producer with the id
// "<service>-processor-<partition>", so a new owner fences the old one.
class PartitionWorker {
 public:
  PartitionWorker(kafka::ClientConfig client, const ProcessorOptions& options, int32_t partition,
                  const AggregateType& type, const Clock& clock, kafka::Consumer& commands,
                  std::unique_ptr<kafka::PartitionReader> reader, ProcessorMetrics* metrics);
  ~PartitionWorker();

  void Start();
  // Stops after the batch in flight: committed if `commit_in_flight`,
  // aborted otherwise (the partition was lost). Returns when the thread ended.
  void Stop(bool commit_in_flight);

  int32_t partition() const { return partition_; }
  // Rebuilt and taking commands.
  bool ready() const { return ready_.load(); }
  // How often another producer with this partition's transactional id
  // fenced this worker.
  int64_t times_fenced() const { return times_fenced_.load(); }
  // Digest of the committed state (see PartitionState::Digest).
  std::string StateDigest();

 private:
  struct Batch;

  void Run();
  void HandleFencing();
  // Producer (fencing the previous owner), then state from snapshot + events.
  absl::Status Recover();
  absl::Status LoadSnapshot(int64_t* events_from);
  absl::Status ReplayEvents(int64_t from);
  absl::Status SeekToCommitted();
  // The commands lag gauge, at most once a second.
  void ReportLag();
  // How long to wait for the first command: until the next timer is due, or idle_poll.
  absl::Duration IdleWait() const;
  std::vector<kafka::Record> CollectCommands();
  // OK when committed; otherwise the partition must be recovered.
  absl::Status RunBatch(const std::vector<kafka::Record>& commands);
  absl::Status TryBatch(const std::vector<kafka::Record>& commands, Batch& batch);
  void Decide(Batch& batch, google::protobuf::Message& command, const kafka::Record* source);
  // Starts a snapshot when due, and writes the next chunk of one in progress.
  void MaybeSnapshot();
  void DeadLetter(Batch& batch, const kafka::Record& record, const std::string& reason);

  const kafka::ClientConfig client_;
  const ProcessorOptions& options_;
  const int32_t partition_;
  const AggregateType& type_;
  const Clock& clock_;
  kafka::Consumer& commands_;
  std::unique_ptr<kafka::PartitionReader> reader_;
  ProcessorMetrics* metrics_;
  const std::string source_;  // CloudEvents source: "helpline/<service>"

  std::unique_ptr<kafka::Producer> producer_;
  // Only the worker's thread changes state_, holding state_mutex_; other
  // threads read it (StateDigest) holding the mutex too.
  absl::Mutex state_mutex_;
  PartitionState state_;
  int64_t events_next_offset_ = 0;
  int64_t events_since_snapshot_ = 0;
  // The next commands offset to handle, for the lag gauge (-1: not known yet).
  int64_t next_command_offset_ = -1;
  absl::Time lag_reported_at_ = absl::InfinitePast();
  absl::Time last_snapshot_;
  std::set<std::string> changed_since_snapshot_;
  // The snapshot being written: aggregates still to write, and the events
  // offset its marker will name.
  std::vector<std::string> snapshot_pending_;
  int64_t snapshot_events_offset_ = 0;
  int64_t snapshot_written_ = 0;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> abandon_{false};
  std::atomic<bool> ready_{false};
  std::atomic<int64_t> times_fenced_{0};
  std::thread thread_;
};

}  // namespace helpline::es
