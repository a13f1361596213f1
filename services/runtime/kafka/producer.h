#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/client.h"

namespace RdKafka {
class Producer;
class KafkaConsumer;
class Topic;
}  // namespace RdKafka

namespace helpline::kafka {

class Consumer;

// Where a produced record landed, or why it did not.
struct Delivery {
  absl::Status status;
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

struct ProducerOptions {
  // Set for a transactional producer; one id per single writer (for a
  // processor: "<svc>-processor-<replica>"), so a restarted replica fences
  // its predecessor.
  std::string transactional_id;
  // Upper bound for a delivery, retries included; for a transactional producer
  // it must not exceed `transaction_timeout`.
  absl::Duration delivery_timeout = absl::Seconds(30);
  absl::Duration transaction_timeout = absl::Seconds(10);
  absl::Duration linger = absl::Milliseconds(2);
  // Any further librdkafka producer property.
  std::map<std::string, std::string> overrides;
};

// An idempotent producer (acks=all, enable.idempotence): records with the same
// key keep their order and are never duplicated by retries. With a
// transactional id it also writes transactions.
//
// Errors from transactional calls come back as statuses whose code says what
// to do (librdkafka's classification):
//   UNAVAILABLE         retriable: call the same method again;
//   ABORTED             the transaction must be aborted (Abort), then redone;
//   FAILED_PRECONDITION fatal, fencing included: destroy this producer;
//   other               a misuse, such as Commit without Begin.
// True for the fatal error of a producer whose transactional id a newer
// producer took over (it was fenced).
bool IsFenced(const absl::Status& status);
// True for a refused offset commit of a consumer the group no longer counts
// as a member (or has fenced): retrying cannot succeed.
bool LostGroupMembership(const absl::Status& status);

class Producer {
 public:
  static absl::StatusOr<std::unique_ptr<Producer>> Create(const ClientConfig& client,
                                                          const ProducerOptions& options);
  ~Producer();

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  using DeliveryCallback = std::function<void(const Delivery&)>;

  // Queues the record. `on_delivery` runs once when the broker acknowledged
  // it or it finally failed: on the producer's own thread, or for a
  // transactional producer inside Flush, CommitTransaction or
  // AbortTransaction on the caller's thread. A record that cannot
  // even be queued (unknown topic, too large ...) is an error here and
  // `on_delivery` is not called.
  absl::Status Produce(const OutgoingRecord& record, DeliveryCallback on_delivery);
  // The same, waiting for the outcome.
  Delivery ProduceAndWait(const OutgoingRecord& record);

  // Waits until every queued record was delivered or failed.
  absl::Status Flush(absl::Duration timeout);

  // Fetches the topics' metadata now, so that the first record to each does
  // not wait for the next metadata refresh (up to a second).
  absl::Status WarmUp(const std::vector<std::string>& topics, absl::Duration timeout);

  // The producer's fatal error (fencing, idempotence broken), if it had one.
  absl::Status FatalError() const;

  absl::Status InitTransactions(absl::Duration timeout);
  absl::Status BeginTransaction();
  // Commits these consumer positions (next offset to read) with the
  // transaction, on behalf of `consumer`'s group.
  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        Consumer& consumer, absl::Duration timeout);
  absl::Status CommitTransaction(absl::Duration timeout);
  absl::Status AbortTransaction(absl::Duration timeout);

 private:
  class DeliveryReporter;
  Producer() = default;

  std::unique_ptr<DeliveryReporter> reporter_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::unique_ptr<internal::BrokerWatch> broker_watch_;
  std::vector<std::unique_ptr<RdKafka::Topic>> warm_topics_;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
};

}  // namespace helpline::kafka
