#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/client.h"

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
// The statuses those two recognise: FAILED_PRECONDITION, and ABORTED.
absl::Status FencedError(absl::string_view message);
absl::Status LostGroupMembershipError(absl::string_view message);

// An idempotent producer (acks=all, enable.idempotence): records with the same
// key keep their order and are never duplicated by retries. With a
// transactional id it also writes transactions. RdKafkaProducer is the real
// one; kafka::testing::FakeKafka makes in-memory ones for unit tests.
class Producer {
 public:
  // A producer to the cluster `client` names (an RdKafkaProducer).
  static absl::StatusOr<std::unique_ptr<Producer>> Create(const ClientConfig& client,
                                                          const ProducerOptions& options);
  Producer() = default;
  virtual ~Producer() = default;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  using DeliveryCallback = std::function<void(const Delivery&)>;

  // Queues the record. `on_delivery` runs once when the broker acknowledged
  // it or it finally failed: on the producer's own thread, or for a
  // transactional producer inside Flush, CommitTransaction or
  // AbortTransaction on the caller's thread. A record that cannot
  // even be queued (unknown topic, too large ...) is an error here and
  // `on_delivery` is not called.
  virtual absl::Status Produce(const OutgoingRecord& record, DeliveryCallback on_delivery) = 0;
  // The same, waiting for the outcome.
  virtual Delivery ProduceAndWait(const OutgoingRecord& record) = 0;

  // Waits until every queued record was delivered or failed.
  virtual absl::Status Flush(absl::Duration timeout) = 0;

  // Fetches the topics' metadata now, so that the first record to each does
  // not wait for the next metadata refresh (up to a second).
  virtual absl::Status WarmUp(const std::vector<std::string>& topics, absl::Duration timeout) = 0;

  // The producer's fatal error (fencing, idempotence broken), if it had one.
  virtual absl::Status FatalError() const = 0;

  virtual absl::Status InitTransactions(absl::Duration timeout) = 0;
  virtual absl::Status BeginTransaction() = 0;
  // Commits these consumer positions (next offset to read) with the
  // transaction, on behalf of `consumer`'s group (a consumer of the same
  // kind as this producer).
  virtual absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                                Consumer& consumer, absl::Duration timeout) = 0;
  virtual absl::Status CommitTransaction(absl::Duration timeout) = 0;
  virtual absl::Status AbortTransaction(absl::Duration timeout) = 0;
};

}  // namespace helpline::kafka
