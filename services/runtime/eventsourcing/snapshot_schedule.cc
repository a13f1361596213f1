#include "services/runtime/eventsourcing/snapshot_schedule.h"

#include "absl/strings/str_cat.h"
#include "helpline/runtime/v1/snapshot.pb.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::es {
namespace {

std::string SnapshotMarkerKey(int32_t partition) {
  return absl::StrCat("snapshot-marker:", partition);
}

std::string SnapshotPartKey(const std::string& aggregate_id, int32_t index) {
  return absl::StrCat("snapshot-part:", index, ":", aggregate_id);
}

// An aggregate's snapshot as records: one, or parts of at most `part_bytes`
// when it is larger.
std::vector<std::string> SnapshotValues(const runtime::v1::AggregateSnapshot& aggregate,
                                        size_t part_bytes) {
  runtime::v1::SnapshotRecord whole;
  *whole.mutable_aggregate() = aggregate;
  std::string value = whole.SerializeAsString();
  if (value.size() <= part_bytes) return {value};
  const std::string data = aggregate.SerializeAsString();
  const int32_t count = static_cast<int32_t>((data.size() + part_bytes - 1) / part_bytes);
  std::vector<std::string> parts;
  for (int32_t index = 0; index < count; ++index) {
    runtime::v1::SnapshotRecord part;
    part.mutable_part()->set_aggregate_id(aggregate.aggregate_id());
    part.mutable_part()->set_version(aggregate.version());
    part.mutable_part()->set_index(index);
    part.mutable_part()->set_count(count);
    part.mutable_part()->set_data(data.substr(index * part_bytes, part_bytes));
    parts.push_back(part.SerializeAsString());
  }
  return parts;
}

}  // namespace

SnapshotSchedule::SnapshotSchedule(const std::string& topic, int32_t partition,
                                   SnapshotOptions options)
    : topic_(topic), partition_(partition), options_(options) {}

void SnapshotSchedule::Reset(absl::Time now, const std::set<std::string>& changed,
                             int64_t events_since) {
  last_snapshot_ = now;
  events_since_snapshot_ = events_since;
  changed_since_snapshot_ = changed;
  pending_.clear();
  written_ = 0;
  failed_at_.reset();
}

void SnapshotSchedule::Changed(const std::set<std::string>& aggregate_ids, int64_t events) {
  changed_since_snapshot_.insert(aggregate_ids.begin(), aggregate_ids.end());
  events_since_snapshot_ += events;
}

SnapshotSchedule::Chunk SnapshotSchedule::NextChunk(const PartitionState& state,
                                                    int64_t events_next_offset, absl::Time now,
                                                    absl::Time taken_at) {
  Chunk chunk;
  if (pending_.empty()) {
    if (changed_since_snapshot_.empty()) return chunk;
    bool retry = failed_at_.has_value() && now - *failed_at_ >= options_.retry_after;
    if (!retry && events_since_snapshot_ < options_.every_events &&
        now - last_snapshot_ < options_.interval) {
      return chunk;
    }
    failed_at_.reset();
    last_snapshot_ = now;
    pending_.assign(changed_since_snapshot_.begin(), changed_since_snapshot_.end());
    changed_since_snapshot_.clear();
    marker_events_offset_ = events_next_offset;
    written_ = 0;
    events_since_snapshot_ = 0;
  }

  size_t bytes = 0;
  while (!pending_.empty() && bytes < options_.chunk_bytes) {
    const std::string id = std::move(pending_.back());
    pending_.pop_back();
    chunk.aggregate_ids.push_back(id);
    std::vector<std::string> values = SnapshotValues(state.ToSnapshot(id), options_.part_bytes);
    for (size_t index = 0; index < values.size(); ++index) {
      bytes += values[index].size();
      chunk.records.push_back({topic_, partition_,
                               values.size() == 1 ? id : SnapshotPartKey(id, static_cast<int32_t>(index)),
                               std::move(values[index]), {}});
    }
  }
  written_ += static_cast<int64_t>(chunk.aggregate_ids.size());
  if (pending_.empty()) {
    runtime::v1::SnapshotRecord marker;
    marker.mutable_marker()->set_partition(partition_);
    marker.mutable_marker()->set_events_offset(marker_events_offset_);
    *marker.mutable_marker()->mutable_taken_at() = ToProtoTime(taken_at);
    marker.mutable_marker()->set_aggregates_written(written_);
    chunk.records.push_back(
        {topic_, partition_, SnapshotMarkerKey(partition_), marker.SerializeAsString(), {}});
    chunk.completes = true;
  }
  return chunk;
}

void SnapshotSchedule::Failed(const Chunk& chunk, absl::Time now) {
  failed_at_ = now;
  changed_since_snapshot_.insert(chunk.aggregate_ids.begin(), chunk.aggregate_ids.end());
  changed_since_snapshot_.insert(pending_.begin(), pending_.end());
  pending_.clear();
}

}  // namespace helpline::es
