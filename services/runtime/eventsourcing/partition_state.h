#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/snapshot.pb.h"
#include "services/runtime/eventsourcing/domain.h"

namespace helpline::es {

// One aggregate as the processor holds it: the service's state plus what the
// runtime needs (version, the commands it handled within the dedupe window).
struct AggregateRecord {
  std::unique_ptr<google::protobuf::Message> state;
  int64_t version = 0;
  int64_t last_event_offset = -1;
  absl::flat_hash_map<std::string, runtime::v1::HandledCommand> handled_commands;
  // The timer was found stale at this version (decide turned it down or did
  // nothing); it stays quiet until the version changes. Memory only.
  int64_t timer_suppressed_at_version = -1;

  AggregateRecord Clone() const;
};

// Applies one event to a record: the service's Apply, the version, and the
// command it came from. `offset` may be -1 while the event is not yet written.
void ApplyEvent(const AggregateType& type, const google::protobuf::Message& event, int64_t offset,
                absl::Duration dedupe_window, AggregateRecord& record);

// The committed state of every aggregate of one commands partition, with the
// aggregates' timers in due order.
class PartitionState {
 public:
  PartitionState(const AggregateType& type, absl::Duration dedupe_window);

  const AggregateType& type() const { return type_; }
  absl::Duration dedupe_window() const { return dedupe_window_; }

  const AggregateRecord* Find(const std::string& aggregate_id) const;
  // Replaces (or adds) an aggregate and refreshes its timer.
  void Put(const std::string& aggregate_id, AggregateRecord record);
  void Clear();
  size_t size() const { return aggregates_.size(); }

  // Replay: one committed event read back from the events topic.
  void ApplyCommitted(const std::string& aggregate_id, const google::protobuf::Message& event,
                      int64_t offset);

  runtime::v1::AggregateSnapshot ToSnapshot(const std::string& aggregate_id) const;
  void LoadSnapshot(const runtime::v1::AggregateSnapshot& snapshot);

  // Aggregates whose timer is due at `now`, earliest first, at most `limit`.
  std::vector<std::string> DueTimers(absl::Time now, size_t limit) const;
  std::optional<absl::Time> NextTimer() const;

  // SHA-256 over every aggregate (id, version, state, handled commands), in id
  // order: equal digests mean equal states, however they were rebuilt.
  std::string Digest() const;

 private:
  void RefreshTimer(const std::string& aggregate_id, const AggregateRecord& record);
  AggregateRecord& Mutable(const std::string& aggregate_id);

  const AggregateType& type_;
  const absl::Duration dedupe_window_;
  absl::flat_hash_map<std::string, AggregateRecord> aggregates_;
  std::set<std::pair<absl::Time, std::string>> timers_;
  absl::flat_hash_map<std::string, absl::Time> timer_of_;
};

}  // namespace helpline::es
