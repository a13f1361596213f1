#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/partition_state.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/client.h"

namespace helpline::es {

// What every batch of a processor shares.
struct BatchSettings {
  const AggregateType* type = nullptr;
  std::string service;  // actor of timers ("<service>.timer"), CloudEvents source
  ServiceTopics topics;
  // Largest event a command may produce (the broker takes 1 MB records).
  size_t max_event_bytes = 900 * 1024;
  // The replies topic's partitions (0: not checked). A reply addressed
  // elsewhere is not written: one bad command must not fail every batch.
  int replies_partitions = 0;
  // Off for a replay, which writes no dead letters and reports differences
  // instead.
  bool log_dead_letters = true;
};

// One partition's share of a transaction: its commands and due timers, each
// decided against a working copy of its aggregate that already has the
// batch's earlier events. Pure: nothing is written here. The processor
// writes TakeEvents() and Replies() in one go; once the transaction
// committed, RecordOffsets notes where the events landed and Commit makes
// the working copies the state.
class PartitionBatch {
 public:
  PartitionBatch(const BatchSettings& settings, int32_t partition, PartitionState& state);

  // Decides one record of the commands partition at service time `now` (a
  // record that is not a command goes to the dead letters).
  void Decide(const kafka::Record& record, absl::Time now);
  // Fires the timers due at `now` (at most `limit`) through Decide. A timer
  // whose command changes nothing is quiet until its aggregate changes.
  void FireDueTimers(absl::Time now, size_t limit);

  // Anything to write (a command's outcome, a timer's events).
  bool writes() const {
    return !events_.empty() || !replies_.empty() || !dead_letters_.empty();
  }
  // The events to write, in order, to the events partition.
  const std::vector<kafka::OutgoingRecord>& events() const { return events_; }
  size_t event_count() const { return event_sources_.size(); }
  // Replies not written for a partition beyond the known count (the topic
  // may have grown).
  int misaddressed_replies() const { return misaddressed_replies_; }
  // The events, moved out to be written (events() is empty afterwards).
  std::vector<kafka::OutgoingRecord> TakeEvents() { return std::move(events_); }
  // The replies and dead letters. A reply names the aggregate's version
  // after its command, which the front waits for its read model to reach
  // (read-your-writes); the last event's offset only when it is known
  // already (a retry's answer), -1 otherwise.
  std::vector<kafka::OutgoingRecord> Replies();
  // After the commit: the events' offsets, one per event, in order.
  void RecordOffsets(const std::vector<int64_t>& event_offsets);
  // Makes the working copies the partition's state; adds the aggregates it
  // changed to `changed`.
  void Commit(std::set<std::string>& changed);
  // One metrics label per command: "ok", "rejected", "duplicate",
  // "dead_letter" (not a command), "refused" (rejected with nobody to tell:
  // a reactor's command, written to the dead letters with the reason).
  const std::vector<std::string>& result_counts() const { return result_counts_; }
  int64_t events_next_offset() const { return events_next_offset_; }
  // A command of this batch left no event (refused, a retry, a no-op, a
  // dead letter): deciding it again could come out differently.
  bool left_a_command_without_events() const { return command_without_events_; }

 private:
  struct PendingReply {
    runtime::v1::Reply reply;
    int32_t partition = 0;
    std::string key;
  };

  WorkingAggregate& Get(const std::string& aggregate_id);
  void Decide(google::protobuf::Message& command, absl::Time now, const kafka::Record* source);
  void DeadLetter(const kafka::Record& record, const std::string& reason,
                  const char* result = "dead_letter");

  const BatchSettings& settings_;
  const int32_t partition_;
  PartitionState& state_;
  const std::string source_;  // CloudEvents source: "helpline/<service>"
  std::unique_ptr<google::protobuf::Message> command_;  // reused for every record

  absl::flat_hash_map<std::string, WorkingAggregate> working_;
  std::vector<kafka::OutgoingRecord> events_;
  // Per event: its aggregate and command, for the offsets.
  std::vector<std::pair<std::string, std::string>> event_sources_;
  std::vector<PendingReply> replies_;
  std::vector<kafka::OutgoingRecord> dead_letters_;
  int misaddressed_replies_ = 0;
  std::vector<std::string> result_counts_;
  int64_t events_next_offset_ = -1;
  bool command_without_events_ = false;
};

}  // namespace helpline::es
