#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "services/runtime/eventsourcing/consumer_metrics.h"
#include "services/runtime/eventsourcing/projection.h"
#include "services/runtime/kafka/shared_clients.h"

namespace helpline::es {

struct EventFeedOptions {
  std::string topic;             // the events topic to project
  std::string deadletter_topic;  // where undecodable records go
  std::string name;              // for logs and the dead-letter headers
  // If set, runs on each event before the projection sees it (what people
  // typed is opened, or its keys read: privacy::PersonalText); while it
  // fails, it runs again on the event as read, backing off up to a second.
  std::function<absl::Status(google::protobuf::Message& event)> before_apply;
  // Where its lag and dead letters are reported (none if null).
  ConsumerMetrics* metrics = nullptr;
};

// Feeds a Projection from the whole events topic (read_committed, from the
// beginning, through the process's shared reader) and tracks how far it got,
// so that a front can say when it has caught up (health) and wait until it
// has applied a write's events (read-your-writes).
class EventFeed {
 public:
  EventFeed(kafka::SharedClients& kafka, EventFeedOptions options,
            std::function<std::unique_ptr<google::protobuf::Message>()> new_event,
            Projection& projection);
  ~EventFeed();

  absl::Status Start();
  void Stop();

  // Applied everything that was in the topic when Start ran.
  bool CaughtUp();
  // Waits until everything in the topic now is applied; UNAVAILABLE before
  // Start.
  absl::Status WaitUntilCurrent(absl::Time deadline);
  // Waits until the event at `offset` of `partition` (and all before it) is
  // applied. DEADLINE_EXCEEDED if not by `deadline`.
  absl::Status WaitForOffset(int32_t partition, int64_t offset, absl::Time deadline);
  // Sets its lag gauges (options.metrics): from any thread, while started.
  // Not on the feed's own thread, which an event that cannot be applied
  // yet keeps busy.
  void ReportLag();
  // Waits until the aggregate's event of this version (and every event
  // before it in its partition) is applied. DEADLINE_EXCEEDED if not by
  // `deadline`. For events with an EventMeta `meta` (field 1).
  absl::Status WaitForVersion(const std::string& aggregate_id, int64_t version,
                              absl::Time deadline);

 private:
  void Run();
  void UpdatePositions();
  // Where the partition ended at Start: records before it are replayed at
  // every start, and their dead letters were counted before.
  int64_t StartEnd(int32_t partition);

  kafka::SharedClients& kafka_;
  const EventFeedOptions options_;
  std::function<std::unique_ptr<google::protobuf::Message>()> new_event_;
  Projection& projection_;
  std::unique_ptr<kafka::Follower> follower_;

  absl::Mutex mutex_;
  std::vector<int64_t> start_ends_ ABSL_GUARDED_BY(mutex_);   // high watermarks at start
  std::vector<int64_t> positions_ ABSL_GUARDED_BY(mutex_);    // next offset to apply
  // When the last record applied of each partition was written.
  std::vector<std::optional<absl::Time>> last_applied_written_ ABSL_GUARDED_BY(mutex_);
  std::vector<PartitionLag> lags_ ABSL_GUARDED_BY(mutex_);
  // The version of each aggregate's last applied event.
  absl::flat_hash_map<std::string, int64_t> versions_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// How long a read that finds nothing waits for its feed to catch up.
inline constexpr absl::Duration kCatchUpWait = absl::Seconds(2);

// Reads through `read`; when that finds nothing, waits (kCatchUpWait) for
// `feed` to apply everything in its topic now and reads once more. A
// client's write acknowledged by another replica's front is then seen here
// too, instead of NOT_FOUND.
template <class Read>
auto ReadOrCatchUp(EventFeed& feed, Read read) -> decltype(read()) {
  auto found = read();
  if (found) return found;
  if (!feed.WaitUntilCurrent(absl::Now() + kCatchUpWait).ok()) return found;
  return read();
}

// Waits until `feed` has applied everything in its topic now, however long
// that takes: a reaction that reads a read model must not act on part of it.
// Gives up only when `stopping` says so (false then).
bool AwaitCurrent(EventFeed& feed, const std::function<bool()>& stopping, const std::string& what);

}  // namespace helpline::es
