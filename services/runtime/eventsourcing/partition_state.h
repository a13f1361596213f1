#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/snapshot.pb.h"
#include "services/runtime/eventsourcing/domain.h"

namespace helpline::es {

// A command an aggregate handled: what a retry of it is answered with.
struct HandledCommand {
  int64_t version = 0;            // aggregate version after its last event
  int64_t last_event_offset = -1;  // events-topic offset of its last event
  absl::Time handled_at;
};
using HandledCommands = absl::flat_hash_map<std::string, HandledCommand>;

// One aggregate as the processor holds it: the service's state plus what the
// runtime needs (version, the commands it handled within the dedupe window).
struct AggregateRecord {
  std::unique_ptr<google::protobuf::Message> state;
  int64_t version = 0;
  int64_t last_event_offset = -1;
  // Every command handled within the dedupe window of the newest one, and
  // perhaps some older ones not pruned yet (those count as forgotten).
  HandledCommands handled_commands;
  absl::Time newest_handled = absl::InfinitePast();
  absl::Time oldest_handled = absl::InfiniteFuture();
  absl::Time forget_before = absl::InfinitePast();
  // The timer was found stale at this version (decide turned it down or did
  // nothing); it stays quiet until the version changes. Memory only.
  int64_t timer_suppressed_at_version = -1;
  // A second copy equal to `state`, for the next batch to decide against
  // without copying (kept for the aggregates of the last batch only).
  std::unique_ptr<google::protobuf::Message> spare;
};

// A batch's copy of one aggregate: a clone of the state to decide against,
// the events applied to it, and the commands handled in this batch on top
// of the committed ones (which are only looked at, never copied).
struct WorkingAggregate {
  const AggregateRecord* committed = nullptr;
  std::unique_ptr<google::protobuf::Message> state;
  std::vector<std::unique_ptr<google::protobuf::Message>> events;
  int64_t version = 0;
  int64_t last_event_offset = -1;
  HandledCommands new_handled;
  int64_t timer_suppressed_at_version = -1;

  const HandledCommand* FindHandled(const std::string& command_id) const;
};

// Applies one event: the service's Apply, the version, and the command it
// came from. `offset` may be -1 while the event is not yet written.
void ApplyEvent(const AggregateType& type, const google::protobuf::Message& event, int64_t offset,
                google::protobuf::Message& state, int64_t& version, int64_t& last_event_offset,
                HandledCommands& handled);

// The committed state of every aggregate of one commands partition, with the
// aggregates' timers in due order.
class PartitionState {
 public:
  // An aggregate remembers every command it handled within `dedupe_window`
  // of its newest one, however many (memory and snapshots grow with an
  // aggregate's command rate times the window).
  PartitionState(const AggregateType& type, absl::Duration dedupe_window);

  const AggregateType& type() const { return type_; }
  absl::Duration dedupe_window() const { return dedupe_window_; }

  const AggregateRecord* Find(const std::string& aggregate_id) const;
  // A copy of the aggregate for a batch to decide against: its spare if it
  // has one (an aggregate of the last batch), else a clone.
  WorkingAggregate Checkout(const std::string& aggregate_id);
  // Makes a batch's copy the committed aggregate and refreshes its timer;
  // the state it replaces, with the batch's events applied, becomes the
  // spare. Aggregates of earlier batches give up their spares, so a
  // partition keeps at most one batch's worth.
  void Commit(const std::string& aggregate_id, WorkingAggregate working);
  void DropSpares();
  void Clear();
  size_t size() const { return aggregates_.size(); }

  // Replay: one committed event read back from the events topic. An event
  // the aggregate already has (its version is not newer) is skipped.
  void ApplyCommitted(const std::string& aggregate_id, const google::protobuf::Message& event,
                      int64_t offset);

  runtime::v1::AggregateSnapshot ToSnapshot(const std::string& aggregate_id) const;
  void LoadSnapshot(const runtime::v1::AggregateSnapshot& snapshot);

  // Aggregates whose timer is due at `now`, earliest first, at most `limit`.
  std::vector<std::string> DueTimers(absl::Time now, size_t limit) const;
  std::optional<absl::Time> NextTimer() const;

  // SHA-256 over every aggregate (id, version, state, handled commands within
  // the window), in id order: equal digests mean equal states, however they
  // were rebuilt.
  std::string Digest() const;

 private:
  void RefreshTimer(const std::string& aggregate_id, const AggregateRecord& record);
  AggregateRecord& Mutable(const std::string& aggregate_id);
  // The handled commands an aggregate remembers (those within the window), by id.
  std::vector<std::pair<std::string, HandledCommand>> Retained(const AggregateRecord& record) const;
  // After commands were added: moves the window and drops what fell out of
  // it, in amortised constant time per command.
  void Prune(AggregateRecord& record, absl::Time oldest_added, absl::Time newest_added) const;

  const AggregateType& type_;
  const absl::Duration dedupe_window_;
  absl::flat_hash_map<std::string, AggregateRecord> aggregates_;
  std::vector<std::string> with_spare_;
  std::set<std::pair<absl::Time, std::string>> timers_;
  absl::flat_hash_map<std::string, absl::Time> timer_of_;
};

}  // namespace helpline::es
