#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/client_factory.h"

// An in-memory Kafka cluster for unit tests of what sits on the clients
// (the processor), with Kafka's rules where the runtime relies on them:
//  - topics of partitions whose records get consecutive offsets;
//  - transactions: a transactional producer's records and the consumer
//    offsets it sends are committed or aborted together; each ends with a
//    marker record that takes an offset and is never read; a
//    read_committed consumer stops at the first record of a transaction
//    still open (the last stable offset) and skips aborted ones;
//  - fencing: InitTransactions with a transactional id aborts what an
//    earlier producer with that id left open and fences it: its next call
//    that would reach a broker (Produce, Flush, SendOffsetsToTransaction,
//    Commit, Abort) fails with FencedError; BeginTransaction is local, as
//    in librdkafka. A producer that failed fatally leaves its transaction
//    open until then. A transaction open longer than its producer's
//    transaction_timeout (counted from BeginTransaction, looked at whenever
//    the cluster is used) is aborted and its producer fenced;
//  - consumer groups: committed offsets; members that Subscribe share the
//    partitions (partition i to the i-th member modulo their count); a
//    partition moves only after its owner released it on its next Poll
//    (revoked through on_rebalance first, as the cooperative protocols do),
//    and a new owner starts at the committed offset once no open
//    transaction is committing it. Offsets sent with a transaction are
//    refused (LostGroupMembershipError) for a member that left or was
//    expelled (ExpelMember), as the broker refuses an unknown or fenced
//    member; like KIP-848's broker, it does not check which partitions the
//    member owns. An expelled member's next Poll loses its partitions
//    (Rebalance::lost) and joins again.
// Left out: brokers, replication, retention and compaction; session and
// poll timeouts (ExpelMember stands for them); retriable errors; markers
// written after the commit returns; timestamps beyond "now"; records
// without a partition go to hash(key) % count, not Kafka's murmur2.
// Delivery callbacks run on the caller's thread inside Flush,
// ProduceAndWait and the transaction calls, never on a thread of their own.
namespace helpline::kafka::testing {

class FakeKafka : public ClientFactory {
 public:
  FakeKafka();
  ~FakeKafka() override;

  void CreateTopic(const std::string& name, int partitions);

  absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) override;
  absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) override;

  // What a read_committed consumer of the whole topic reads now, by
  // partition and then offset.
  std::vector<Record> Committed(const std::string& topic);
  // The group's committed offset of the partition, if it has one.
  std::optional<int64_t> CommittedOffset(const std::string& group, const std::string& topic,
                                         int32_t partition);
  // How many transactions were aborted so far.
  int64_t TransactionsAborted();
  // How often a producer with this transactional id called InitTransactions.
  int64_t Epoch(const std::string& transactional_id);
  // The group drops its `index`-th member (in the order they joined), as
  // the broker does with one whose session or poll interval ran out; its
  // partitions go to the others at once. `at_next_offsets`: not now but
  // when it next sends offsets with a transaction, so that it is dropped
  // in the middle of one.
  void ExpelMember(const std::string& group, size_t index, bool at_next_offsets = false);

  // The next `times` CommitTransaction calls fail with `error` instead of
  // committing: ABORTED leaves the transaction for the producer to abort,
  // FAILED_PRECONDITION is the producer's fatal error (its transaction
  // aborted).
  void FailCommits(int times, absl::Status error);
  // The broker's fault seen after a restart: from now on, transactions
  // that commit offsets for `group` commit their records, but the offsets
  // are never settled. A read_committed consumer's Committed waits for them
  // for good; a read_uncommitted one gets the offsets settled before.
  void StrandOffsets(const std::string& group);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace helpline::kafka::testing
