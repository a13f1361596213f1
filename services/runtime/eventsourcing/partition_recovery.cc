#include "services/runtime/eventsourcing/partition_recovery.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "helpline/runtime/v1/snapshot.pb.h"
#include "services/runtime/kafka/client_factory.h"
#include "services/runtime/server/log.h"

namespace helpline::es {
namespace {

// Reads each partition of `topic` from its offset in `from` to the high
// watermark it had when reading began, which `uncommitted` (a
// read_uncommitted consumer) reports: past any transaction still open or
// still being marked there, which `consumer` (read_committed) waits for.
absl::Status ReadToEnd(kafka::Consumer& consumer, kafka::Consumer& uncommitted,
                       const std::string& topic, const std::map<int32_t, int64_t>& from,
                       const std::function<bool()>& cancelled,
                       const std::function<void(const kafka::Record&)>& visit) {
  std::map<int32_t, int64_t> ends;
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (const auto& [partition, offset] : from) {
    absl::StatusOr<std::pair<int64_t, int64_t>> watermarks =
        uncommitted.WatermarkOffsets(topic, partition, absl::Seconds(10));
    if (!watermarks.ok()) return watermarks.status();
    if (offset >= watermarks->second) continue;
    ends[partition] = watermarks->second;
    assignment.push_back({topic, partition, offset});
  }
  if (assignment.empty()) return absl::OkStatus();
  if (absl::Status s = consumer.Assign(assignment); !s.ok()) return s;
  // Positions (a partition whose end is a transaction marker is passed
  // only by its position) and `cancelled` are asked when idle and every
  // 100 ms while busy.
  absl::Time next_check = absl::Now() + absl::Milliseconds(100);
  while (!ends.empty()) {
    absl::StatusOr<std::optional<kafka::Record>> record = consumer.Poll(absl::Milliseconds(100));
    if (!record.ok()) {
      if (record.status().code() == absl::StatusCode::kFailedPrecondition) return record.status();
      log::Warn("reading back", {{"topic", topic}, {"error", record.status().ToString()}});
    } else if (record->has_value()) {
      const kafka::Record& read = **record;
      auto end = ends.find(read.partition);
      if (end != ends.end()) {  // records past a partition's end are not its past
        visit(read);
        if (read.offset + 1 >= end->second) ends.erase(end);
      }
      if (absl::Now() < next_check) continue;
    }
    next_check = absl::Now() + absl::Milliseconds(100);
    if (cancelled()) return absl::CancelledError("recovery cancelled");
    for (auto it = ends.begin(); it != ends.end();) {
      absl::StatusOr<int64_t> position = consumer.Position(topic, it->first);
      it = position.ok() && *position >= it->second ? ends.erase(it) : std::next(it);
    }
  }
  return consumer.Assign({});
}

// What the snapshots topic holds for one partition.
struct SnapshotRecords {
  std::map<std::string, runtime::v1::AggregateSnapshot> latest;
  // Aggregate id -> version -> the parts read, by index.
  std::map<std::string, std::map<int64_t, std::map<int32_t, runtime::v1::AggregatePart>>> parts;
  std::optional<runtime::v1::SnapshotMarker> marker;
  int64_t commands_checkpoint = -1;
};

// Loads a partition's snapshot into `recovered`; its events offset, or 0
// when there is no complete snapshot (then every event is replayed).
int64_t LoadSnapshot(SnapshotRecords& records, RecoveredPartition& recovered) {
  // A large aggregate: its newest complete set of parts, if newer than its
  // single record. The parts of one snapshot are written in one
  // transaction, so a newest set with parts missing is damage: then no
  // snapshot of the partition is trusted and every event is replayed.
  for (auto& [id, versions] : records.parts) {
    const auto& [newest, by_index] = *versions.rbegin();
    const int32_t count = by_index.begin()->second.count();
    std::string data;
    for (const auto& [index, part] : by_index) data += part.data();
    runtime::v1::AggregateSnapshot whole;
    if (static_cast<int32_t>(by_index.size()) != count || by_index.rbegin()->first != count - 1 ||
        !whole.ParseFromString(data)) {
      log::Error("a snapshot's parts are missing or damaged; replaying the partition from the start",
                 {{"partition", recovered.partition}, {"aggregate_id", id}, {"version", newest}});
      return 0;
    }
    auto single = records.latest.find(id);
    if (single == records.latest.end() || single->second.version() < whole.version()) {
      records.latest[id] = std::move(whole);
    }
  }
  if (!records.marker) return 0;
  for (const auto& [id, snapshot] : records.latest) recovered.state->LoadSnapshot(snapshot);
  return records.marker->events_offset();
}

// RecoverPartitions for some of the partitions, through one consumer (and
// one read_uncommitted consumer for the ends); by partition.
absl::StatusOr<std::map<int32_t, RecoveredPartition>> RecoverThroughOneConsumer(
    kafka::ClientFactory& clients, const ServiceTopics& topics, const AggregateType& type,
    absl::Duration dedupe_window, const std::vector<int32_t>& partitions,
    const std::function<bool()>& cancelled) {
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer =
      clients.NewConsumer(kafka::ConsumerOptions{});
  if (!consumer.ok()) return consumer.status();
  kafka::ConsumerOptions uncommitted_options;
  uncommitted_options.read_committed = false;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> uncommitted =
      clients.NewConsumer(uncommitted_options);
  if (!uncommitted.ok()) return uncommitted.status();

  std::map<int32_t, SnapshotRecords> snapshots;
  std::map<int32_t, int64_t> from_start;
  for (int32_t partition : partitions) from_start[partition] = 0;
  absl::Status read = ReadToEnd(
      **consumer, **uncommitted, topics.snapshots, from_start, cancelled, [&](const kafka::Record& record) {
        runtime::v1::SnapshotRecord snapshot;
        if (!snapshot.ParseFromString(record.value)) {
          log::Error("undecodable snapshot record skipped",
                     {{"partition", record.partition}, {"offset", record.offset}});
          return;
        }
        SnapshotRecords& records = snapshots[record.partition];
        if (snapshot.has_marker()) {
          records.marker = snapshot.marker();
        } else if (snapshot.has_checkpoint()) {
          records.commands_checkpoint = snapshot.checkpoint().commands_offset();  // the newest
        } else if (snapshot.has_aggregate()) {
          records.latest[record.key] = std::move(*snapshot.mutable_aggregate());
        } else if (snapshot.has_part()) {
          runtime::v1::AggregatePart& part = *snapshot.mutable_part();
          records.parts[part.aggregate_id()][part.version()][part.index()] = std::move(part);
        }
      });
  if (!read.ok()) return read;

  std::map<int32_t, RecoveredPartition> recovered;
  std::map<int32_t, int64_t> events_from;
  for (int32_t partition : partitions) {
    RecoveredPartition& each = recovered[partition];
    each.partition = partition;
    each.state = std::make_unique<PartitionState>(type, dedupe_window);
    each.snapshot_events_offset = LoadSnapshot(snapshots[partition], each);
    each.commands_checkpoint = snapshots[partition].commands_checkpoint;
    each.events_next_offset = each.snapshot_events_offset;
    events_from[partition] = each.snapshot_events_offset;
  }
  snapshots.clear();

  std::unique_ptr<google::protobuf::Message> event = type.NewEvent();
  read = ReadToEnd(**consumer, **uncommitted, topics.events, events_from, cancelled,
                   [&](const kafka::Record& record) {
                     RecoveredPartition& each = recovered[record.partition];
                     each.events_next_offset = record.offset + 1;
                     event->Clear();
                     if (!event->ParseFromString(record.value)) {
                       log::Error("undecodable event skipped during rebuild",
                                  {{"partition", record.partition}, {"offset", record.offset}});
                       return;
                     }
                     each.state->ApplyCommitted(record.key, *event, record.offset);
                     each.changed.insert(record.key);
                     ++each.events_replayed;
                   });
  if (!read.ok()) return read;
  return recovered;
}

}  // namespace

absl::StatusOr<std::vector<RecoveredPartition>> RecoverPartitions(
    kafka::ClientFactory& clients, const ServiceTopics& topics, const AggregateType& type,
    absl::Duration dedupe_window, const std::vector<int32_t>& partitions,
    const std::function<bool()>& cancelled) {
  // Decoding and applying events is the work: spread over the cores.
  const size_t threads =
      std::clamp<size_t>(std::thread::hardware_concurrency(), 1, std::max<size_t>(1, partitions.size()));
  std::vector<std::vector<int32_t>> shares(std::min<size_t>(threads, 4));
  for (size_t i = 0; i < partitions.size(); ++i) shares[i % shares.size()].push_back(partitions[i]);
  std::vector<absl::StatusOr<std::map<int32_t, RecoveredPartition>>> results(shares.size());
  // One share failing stops the others: the round is retried as a whole.
  std::atomic<bool> failed{false};
  auto stop = [&] { return failed.load() || cancelled(); };
  auto recover_share = [&](size_t i) {
    results[i] = RecoverThroughOneConsumer(clients, topics, type, dedupe_window, shares[i], stop);
    if (!results[i].ok()) failed.store(true);
  };
  std::vector<std::thread> workers;
  for (size_t i = 1; i < shares.size(); ++i) workers.emplace_back(recover_share, i);
  recover_share(0);
  for (std::thread& worker : workers) worker.join();
  std::map<int32_t, RecoveredPartition> all;
  for (auto& result : results) {
    if (!result.ok()) return result.status();
    all.merge(*result);
  }
  std::vector<RecoveredPartition> out;  // in the order asked for
  for (int32_t partition : partitions) out.push_back(std::move(all.at(partition)));
  return out;
}

}  // namespace helpline::es
