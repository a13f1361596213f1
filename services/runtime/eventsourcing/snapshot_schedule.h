#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/runtime/eventsourcing/partition_state.h"
#include "services/runtime/kafka/client.h"

namespace helpline::es {

struct SnapshotOptions {
  // A snapshot is taken after this many events, or this long after the
  // last one if anything changed.
  int64_t every_events = 100000;
  absl::Duration interval = absl::Minutes(5);
  // A larger aggregate is written in parts of at most this size (under the
  // broker's 1 MB record limit).
  size_t part_bytes = 512 * 1024;
  // Records written per transaction, between batches of commands.
  size_t chunk_bytes = 256 * 1024;
  // A snapshot that failed is tried again this long after, due or not.
  absl::Duration retry_after = absl::Seconds(1);
};

// When one partition's snapshot is due and what its next chunk writes: every
// aggregate changed since the last complete snapshot, a chunk per
// transaction so commands do not wait for all of it, then the marker naming
// the events offset a rebuild replays from. Each record holds a state at
// least as new as the marker's offset; a rebuild skips the events an
// aggregate's record already has (by version).
class SnapshotSchedule {
 public:
  SnapshotSchedule(const std::string& topic, int32_t partition, SnapshotOptions options);

  struct Chunk {
    std::vector<kafka::OutgoingRecord> records;
    std::vector<std::string> aggregate_ids;  // whose records these are
    bool completes = false;                  // the marker is among the records
  };

  // After a rebuild: nothing written yet, `changed` since the last snapshot.
  void Reset(absl::Time now, const std::set<std::string>& changed, int64_t events_since);
  void Changed(const std::set<std::string>& aggregate_ids, int64_t events);
  // The next chunk to write (no records: nothing due). `events_next_offset`
  // is where a marker of a snapshot starting now points; `taken_at` is the
  // service time the marker records.
  Chunk NextChunk(const PartitionState& state, int64_t events_next_offset, absl::Time now,
                  absl::Time taken_at);
  // The chunk was not written: its aggregates and those not yet written
  // wait for the next snapshot, which starts after `retry_after`.
  void Failed(const Chunk& chunk, absl::Time now);

 private:
  const std::string topic_;
  const int32_t partition_;
  const SnapshotOptions options_;
  absl::Time last_snapshot_;
  int64_t events_since_snapshot_ = 0;
  std::optional<absl::Time> failed_at_;
  std::set<std::string> changed_since_snapshot_;
  // The snapshot being written: aggregates still to write, and the events
  // offset its marker will name.
  std::vector<std::string> pending_;
  int64_t marker_events_offset_ = 0;
  int64_t written_ = 0;
};

}  // namespace helpline::es
