#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/command_batch.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/partition_recovery.h"
#include "services/runtime/eventsourcing/partition_state.h"
#include "services/runtime/eventsourcing/processor_metrics.h"
#include "services/runtime/eventsourcing/snapshot_schedule.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/client_factory.h"

namespace helpline::es {

struct ProcessorOptions {
  // "identity": the consumer group "<service>-processor", the transactional
  // id "<service>-processor-<replica>".
  std::string service;
  // Names this replica, stably across its restarts (the pod's name), so that
  // a restarted replica fences its predecessor's transaction at once. Two
  // replicas running at once must never share it.
  std::string replica = "local";
  ServiceTopics topics;
  // A transaction closes after this many commands or this long after its first.
  int max_batch_commands = 1000;
  absl::Duration max_batch_wait = absl::Milliseconds(2);
  // With no command coming, the processor wakes for its next timer, and at
  // least this often; `clock_rate` (clock.rate) turns a timer's service time
  // into real time.
  absl::Duration idle_poll = absl::Milliseconds(100);
  double clock_rate = 1;
  // Backstop for a replica that stopped in the middle of a transaction and
  // never came back: the broker aborts it after this long.
  absl::Duration transaction_timeout = absl::Seconds(10);
  // The classic group protocol's session (the consumer protocol keeps it on
  // the broker).
  absl::Duration session_timeout = absl::Seconds(10);
  // How long a command id is remembered, so that a retry gets the first
  // outcome; memory and snapshots grow with the command rate times this.
  absl::Duration dedupe_window = absl::Hours(24);
  SnapshotOptions snapshots;
  // After being fenced, how long the processor waits before taking its
  // partitions back (see Processor::RecoverFromFatalError).
  absl::Duration fencing_backoff = absl::Seconds(1);
  // Largest event a command may produce (the broker takes 1 MB records).
  size_t max_event_bytes = 900 * 1024;
  // Tests: own these partitions without joining the consumer group.
  std::vector<int32_t> static_partitions;
  // Once ready, how long a partition given to this replica may take to
  // rebuild before the replica stops being InService.
  absl::Duration rebuild_grace = absl::Seconds(30);
  // How long a rebuild waits for the group's committed offsets to settle
  // before it starts from the last settled ones (0: three transaction
  // timeouts, at least 30 s). Only a broker that lost track of a
  // transaction keeps them unsettled that long.
  absl::Duration unsettled_offsets_patience = absl::ZeroDuration();
};

// A service's processor role, the single writer of its aggregates: joins the
// consumer group on the commands topic and decides the commands of every
// partition the group gives it, in batches. One transaction per batch
// covers every owned partition: their events, the replies and the commands'
// offsets, sent with the consumer's group metadata, so a replica that lost
// its partitions can no longer commit (Kafka's exactly-once v2, KIP-447).
// State, snapshots and timers stay per partition. A partition that arrives
// is rebuilt from its snapshot and events in the background while the
// others go on deciding; one that leaves takes nothing else with it.
class Processor {
 public:
  // Every Kafka client it opens comes from `kafka`; `metrics` may be null.
  Processor(std::shared_ptr<kafka::ClientFactory> kafka, ProcessorOptions options,
            const AggregateType& type, const Clock& clock, ProcessorMetrics* metrics);
  // On the real cluster `client` names.
  Processor(kafka::ClientConfig client, ProcessorOptions options, const AggregateType& type,
            const Clock& clock, ProcessorMetrics* metrics);
  ~Processor();

  // Checks the topics (commands, events and snapshots must have the same
  // partition count), fences this replica's predecessor and starts consuming.
  absl::Status Start();
  // Commits the batch in flight, leaves the group and stops.
  void Stop();

  std::vector<int32_t> OwnedPartitions();
  // Sets the commands lag gauges of the partitions it owns: from any thread
  // between Start and Stop (not its own, which a stuck commit keeps busy).
  // A partition being rebuilt has waited since it arrived.
  void ReportLag();
  // The group assigned this processor its partitions (perhaps none) and every
  // one of them is rebuilt and taking commands.
  bool Ready();
  // For the replica's readiness: Ready once, and since then no partition
  // has been rebuilding longer than `rebuild_grace`. A rebalance (a replica
  // joining, or one that died leaving the group) does not take this
  // replica's calls out of service; a rebuild that is stuck does.
  bool InService();
  // Digest of an owned, rebuilt partition's state; empty if not owned here.
  std::string StateDigest(int32_t partition);
  // How often another producer with this replica's transactional id fenced it.
  int64_t TimesFenced() const { return times_fenced_.load(); }

 private:
  // One owned partition. Mutated by the processor's thread only, holding
  // mutex_; read by others holding it too.
  struct Partition {
    // 0 while being rebuilt; then set, and commands are decided.
    std::unique_ptr<PartitionState> state;
    std::unique_ptr<SnapshotSchedule> snapshots;
    // Distinguishes this ownership of the partition from an earlier one, so
    // a rebuild that finishes after the partition left and came back is
    // not installed.
    uint64_t ownership = 0;
    absl::Time adopted_at;
    int64_t events_next_offset = 0;
    // The next commands offset to decide, for the lag gauges (-1: unknown).
    int64_t next_command_offset = -1;
    // When the last command decided was written.
    std::optional<absl::Time> last_command_written;
    PartitionLag lag{absl::InfinitePast()};
    // Since when commands of it may have waited: its arrival, its last
    // decided batch, or the last time nothing waited.
    absl::Time undecided_since;
  };
  struct Recovery {
    int32_t partition = 0;
    uint64_t ownership = 0;
  };
  struct Rebuilt {
    Recovery recovery;
    RecoveredPartition partition;
    // The next command to decide: the group's committed offset, or the
    // partition's first.
    int64_t commands_offset = 0;
    absl::Duration took;
  };

  void Run();
  void OnRebalance(const kafka::Rebalance& rebalance);
  void Adopt(const std::vector<int32_t>& partitions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Release(const std::vector<int32_t>& partitions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Producer with this replica's transactional id; fences its predecessor.
  absl::Status StartProducer();
  void RecoverFromFatalError(const absl::Status& error);
  // The group's committed offsets of these commands partitions, as the
  // rebuild starts from them (recovery thread only).
  absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> CommittedOffsets(
      const std::vector<kafka::TopicPartitionOffset>& partitions);
  // The background rebuilds: one round rebuilds whatever is waiting.
  void RunRecoveries();
  void InstallRecovered();
  std::map<int32_t, std::vector<kafka::Record>> CollectCommands();
  absl::Duration IdleWait();
  // OK when committed (or nothing to do); otherwise the producer must go.
  absl::Status RunBatch(std::map<int32_t, std::vector<kafka::Record>>& commands);
  absl::Status Transact(std::map<int32_t, std::unique_ptr<PartitionBatch>>& batches,
                        const std::map<int32_t, std::vector<kafka::Record>>& commands);
  absl::Status WriteSnapshotChunks();
  // Within the open transaction: writes the records and waits for them.
  // Shared with the delivery callbacks, which an abort may still run later.
  struct Deliveries {
    std::mutex mutex;
    std::vector<kafka::Delivery> slots;  // one per record, in order
  };
  // Within the open transaction: queues the records (aborting it if one
  // cannot be queued); their deliveries arrive by the commit.
  absl::StatusOr<std::shared_ptr<Deliveries>> QueueAll(
      const std::vector<kafka::OutgoingRecord>& records);
  absl::Status ProduceAll(const std::vector<kafka::OutgoingRecord>& records,
                          std::vector<kafka::Delivery>* deliveries);
  // Aborts the open transaction after `failed`; ABORTED unless it was fatal.
  absl::Status AbortAfter(const absl::Status& failed);
  // After a reply went unwritten for want of its partition: the replies
  // topic may have grown since Start (at most every 5 s).
  void RefreshRepliesPartitions();
  // The next command offset of each partition `written` (after `commands`,
  // if it has some): sent with every transaction, snapshots' and timers'
  // too, so that only a member of the group can commit.
  std::vector<kafka::TopicPartitionOffset> ConsumedOffsets(
      const std::set<int32_t>& written, const std::map<int32_t, std::vector<kafka::Record>>& commands);
  // Commits the open transaction, with these consumed offsets if any.
  absl::Status CommitTransaction(const std::vector<kafka::TopicPartitionOffset>& offsets);

  const std::shared_ptr<kafka::ClientFactory> kafka_;
  const ProcessorOptions options_;
  const AggregateType& type_;
  const Clock& clock_;
  ProcessorMetrics* metrics_;
  BatchSettings settings_;  // completed by Start; then the processor's thread only
  absl::Time replies_checked_at_ = absl::InfinitePast();

  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::Producer> producer_;  // the processor's thread only

  mutable absl::Mutex mutex_;
  std::map<int32_t, Partition> partitions_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_ownership_ ABSL_GUARDED_BY(mutex_) = 1;
  bool assignment_known_ ABSL_GUARDED_BY(mutex_) = false;
  bool was_ready_ ABSL_GUARDED_BY(mutex_) = false;

  absl::Mutex recovery_mutex_;
  std::vector<Recovery> to_recover_ ABSL_GUARDED_BY(recovery_mutex_);
  std::vector<Rebuilt> recovered_ ABSL_GUARDED_BY(recovery_mutex_);

  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> times_fenced_{0};
  std::thread thread_;
  std::thread recovery_thread_;
  // Asks for the group's stable committed offsets (read_committed).
  std::unique_ptr<kafka::Consumer> stable_offsets_;
  // Since when the committed offsets have been waiting for a transaction.
  std::optional<absl::Time> offsets_unstable_since_;
  // The last lookup gave the settled offsets after the stable ones failed.
  bool offsets_fell_back_ = false;
};

}  // namespace helpline::es
