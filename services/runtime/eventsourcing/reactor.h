#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/eventsourcing/consumer_metrics.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/shared_clients.h"

namespace helpline::es {

// Who a reaction's records are from and where its commands go.
struct ReactionTarget {
  std::string name;            // "payments.from-matching": actor and command ids
  std::string commands_topic;  // this service's commands topic
};

// What a reactor does with one event: the records it writes in answer
// (commands for its own service, or anything else, such as tombstones).
// Type-erased; see TypedReaction.
class Reaction {
 public:
  virtual ~Reaction() = default;
  virtual std::unique_ptr<google::protobuf::Message> NewEvent() const = 0;
  // Must be pure: the same event, the same records (events are read again
  // after a crash or a rebalance).
  virtual std::vector<kafka::OutgoingRecord> Outputs(const google::protobuf::Message& event,
                                                     const kafka::Record& source,
                                                     const ReactionTarget& target) const = 0;
};

// A saga step: `react` returns commands for the reactor's own service with
// meta.aggregate_id set; the n-th command of an event gets the id
// UUIDv5(event id, "<reaction name>/<n>"), so a repeated event sends commands
// the processor already knows: a no-op.
//
// A reaction that reads a read model besides the event (kByContent) may
// answer a repeated event with other commands (some done meanwhile): each
// command's id then comes from the event and the command itself (its
// aggregate and body), never from its place in the answer.
enum class ReactionIds { kByPosition, kByContent };

template <class SourceEvent, class TargetCommand>
class TypedReaction : public Reaction {
 public:
  explicit TypedReaction(std::function<std::vector<TargetCommand>(const SourceEvent&)> react,
                         ReactionIds ids = ReactionIds::kByPosition)
      : react_(std::move(react)), ids_(ids) {}
  std::unique_ptr<google::protobuf::Message> NewEvent() const override {
    return std::make_unique<SourceEvent>();
  }
  std::vector<kafka::OutgoingRecord> Outputs(const google::protobuf::Message& message,
                                             const kafka::Record& source,
                                             const ReactionTarget& target) const override;

 private:
  std::function<std::vector<TargetCommand>(const SourceEvent&)> react_;
  const ReactionIds ids_;
};

namespace internal {
// The command record for a reaction to an event; `discriminator` tells the
// event's commands apart (see ReactionIds).
kafka::OutgoingRecord ReactionCommand(google::protobuf::Message& command,
                                      runtime::v1::CommandMeta& meta,
                                      const runtime::v1::EventMeta& source_meta,
                                      const kafka::Record& source, absl::string_view discriminator,
                                      const ReactionTarget& target);
// The discriminator of a kByContent command: its aggregate and body.
std::string ContentDiscriminator(const google::protobuf::Message& command,
                                 const runtime::v1::CommandMeta& meta);
}  // namespace internal

template <class SourceEvent, class TargetCommand>
std::vector<kafka::OutgoingRecord> TypedReaction<SourceEvent, TargetCommand>::Outputs(
    const google::protobuf::Message& message, const kafka::Record& source,
    const ReactionTarget& target) const {
  const auto& event = static_cast<const SourceEvent&>(message);
  std::vector<TargetCommand> commands = react_(event);
  std::vector<kafka::OutgoingRecord> records;
  for (size_t n = 0; n < commands.size(); ++n) {
    TargetCommand& command = commands[n];
    std::string discriminator = ids_ == ReactionIds::kByContent
                                    ? internal::ContentDiscriminator(command, command.meta())
                                    : std::to_string(n);
    records.push_back(internal::ReactionCommand(command, *command.mutable_meta(), event.meta(),
                                                source, discriminator, target));
  }
  return records;
}

// One reaction of a reactor: its name (see ReactionTarget) and the events
// topic it reacts to.
struct Subscription {
  std::string name;
  std::string source_topic;
  const Reaction* reaction = nullptr;
};

struct ReactorOptions {
  std::string group;             // "<service>.reactions": one consumer group a service
  std::string commands_topic;    // this service's commands topic
  std::string deadletter_topic;
  // Subscriptions that used to have a consumer group of their own, named
  // after the subscription: a new group starts where those left off.
  bool continue_from_subscription_groups = true;
  absl::Duration session_timeout = absl::Seconds(10);  // classic group protocol only
  // Where its lag and dead letters are reported (none if null).
  ConsumerMetrics* metrics = nullptr;
};

// A service's reactions: one consumer in one consumer group reads every
// topic they react to and writes what each reaction answers to each event,
// through the process's shared producer. Offsets are committed once those
// records are in Kafka, at most once a second (and when stopping): at least
// once, which the reactions make harmless.
class Reactor {
 public:
  Reactor(kafka::SharedClients& kafka, ReactorOptions options,
          std::vector<Subscription> subscriptions);
  ~Reactor();

  absl::Status Start();
  void Stop();
  int64_t events_seen() const { return events_seen_.load(); }
  // Sets its lag gauges (options.metrics) by what it has written out: from
  // any thread, while started (its own may be retrying a write for long).
  void ReportLag();

 private:
  void Run();
  absl::Status Send(const std::vector<kafka::OutgoingRecord>& outputs);
  void CommitOffsets();

  kafka::SharedClients& kafka_;
  const ReactorOptions options_;
  const std::vector<Subscription> subscriptions_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> events_seen_{0};
  // The batch being read: next offset of each partition it has events of.
  std::map<std::pair<std::string, int32_t>, int64_t> next_offsets_;
  // Offsets whose events' outputs are in Kafka, not yet committed.
  std::map<std::pair<std::string, int32_t>, int64_t> to_commit_;
  absl::Time committed_at_ = absl::InfinitePast();
  // The batch's first offset of each partition, and when its last record
  // of each was written.
  std::map<std::pair<std::string, int32_t>, int64_t> batch_first_;
  std::map<std::pair<std::string, int32_t>, absl::Time> batch_written_;
  // Records are read whose outputs are not written yet. While not, the
  // consumer's position (past transaction markers too) is what is done.
  std::atomic<bool> batch_pending_{false};
  // The partitions this member reads, for the lag gauges: the offset after
  // the last record whose outputs are written (-1: none yet), and when that
  // record was written.
  struct Owned {
    PartitionLag lag;
    int64_t next_done = -1;
    std::optional<absl::Time> last_done_written;
  };
  absl::Mutex owned_mutex_;
  std::map<std::pair<std::string, int32_t>, Owned> owned_ ABSL_GUARDED_BY(owned_mutex_);
  std::thread thread_;
};

}  // namespace helpline::es
