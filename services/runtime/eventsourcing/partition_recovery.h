#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/partition_state.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/client_factory.h"

namespace helpline::es {

// One commands partition's aggregates as rebuilt from the log.
struct RecoveredPartition {
  int32_t partition = 0;
  std::unique_ptr<PartitionState> state;
  // The events offset after the last event read; where a new snapshot's
  // marker points.
  int64_t events_next_offset = 0;
  // Events applied after the snapshot, and their aggregates: what the next
  // snapshot has to write.
  int64_t events_replayed = 0;
  std::set<std::string> changed;
  int64_t snapshot_events_offset = 0;
  // The newest CommandsCheckpoint's offset (-1: none); used only when the
  // group's stable offsets could not be had.
  int64_t commands_checkpoint = -1;
};

// Rebuilds partitions from their latest complete snapshot and the events
// after it; the partitions are shared among up to one thread per core (at
// most 4), each with consumers of its own. Returns them in the order asked.
// Each topic partition is read to the high watermark it had when reading
// began; being read_committed, that waits for any transaction still open
// or not yet marked there (a zombie's until the broker aborts it). The
// processor looks up its committed command offsets before calling this (the
// lookup waits for a previous owner's transaction to end), so what is read
// includes every event committed with those offsets. CANCELLED as soon as
// `cancelled` says so.
absl::StatusOr<std::vector<RecoveredPartition>> RecoverPartitions(
    kafka::ClientFactory& clients, const ServiceTopics& topics, const AggregateType& type,
    absl::Duration dedupe_window, const std::vector<int32_t>& partitions,
    const std::function<bool()>& cancelled);

}  // namespace helpline::es
