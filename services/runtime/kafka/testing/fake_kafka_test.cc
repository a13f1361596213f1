// The in-memory Kafka keeps the rules the processor's unit tests rely on.
#include "services/runtime/kafka/testing/fake_kafka.h"

#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace helpline::kafka::testing {
namespace {

std::vector<std::string> ValuesReadBy(Consumer& consumer) {
  std::vector<std::string> values;
  for (;;) {
    absl::StatusOr<std::optional<Record>> record = consumer.Poll(absl::Milliseconds(20));
    EXPECT_TRUE(record.ok()) << record.status();
    if (!record.ok() || !record->has_value()) return values;
    values.push_back((*record)->value);
  }
}

std::unique_ptr<Producer> Transactional(FakeKafka& kafka, const std::string& id,
                                        absl::Duration timeout = absl::Seconds(10)) {
  ProducerOptions options;
  options.transactional_id = id;
  options.transaction_timeout = timeout;
  std::unique_ptr<Producer> producer = *kafka.NewProducer(options);
  EXPECT_TRUE(producer->InitTransactions(absl::Seconds(1)).ok());
  return producer;
}

TEST(FakeKafka, ReadCommittedStopsAtAnOpenTransactionAndSkipsAbortedOnes) {
  FakeKafka kafka;
  kafka.CreateTopic("t", 1);
  std::unique_ptr<Producer> writer = Transactional(kafka, "writer");
  std::unique_ptr<Producer> plain = *kafka.NewProducer({});
  std::unique_ptr<Consumer> committed = *kafka.NewConsumer({});
  ConsumerOptions uncommitted_options;
  uncommitted_options.read_committed = false;
  std::unique_ptr<Consumer> uncommitted = *kafka.NewConsumer(uncommitted_options);
  ASSERT_TRUE(committed->Assign({{"t", 0, kOffsetBeginning}}).ok());
  ASSERT_TRUE(uncommitted->Assign({{"t", 0, kOffsetBeginning}}).ok());

  ASSERT_TRUE(writer->BeginTransaction().ok());
  ASSERT_TRUE(writer->Produce({"t", 0, "k", "aborted"}, nullptr).ok());
  ASSERT_TRUE(writer->AbortTransaction(absl::Seconds(1)).ok());
  ASSERT_TRUE(writer->BeginTransaction().ok());
  ASSERT_TRUE(writer->Produce({"t", 0, "k", "in-transaction"}, nullptr).ok());
  EXPECT_TRUE(plain->ProduceAndWait({"t", 0, "k", "plain"}).status.ok());

  EXPECT_EQ(ValuesReadBy(*uncommitted),
            (std::vector<std::string>{"aborted", "in-transaction", "plain"}));
  EXPECT_TRUE(ValuesReadBy(*committed).empty()) << "held back by the open transaction";
  EXPECT_EQ(committed->EndOffsets("t", 1, absl::Seconds(1))->at(0), 2)
      << "the last stable offset: past the aborted record and its marker";

  ASSERT_TRUE(writer->CommitTransaction(absl::Seconds(1)).ok());
  EXPECT_EQ(ValuesReadBy(*committed), (std::vector<std::string>{"in-transaction", "plain"}));
  EXPECT_EQ(committed->WatermarkOffsets("t", 0, absl::Seconds(1))->second, 5)
      << "three records and two markers";
  EXPECT_EQ(*committed->Position("t", 0), 5) << "past the last marker";
}

TEST(FakeKafka, ANewProducerWithTheSameIdFencesTheOldOneAndAbortsItsTransaction) {
  FakeKafka kafka;
  kafka.CreateTopic("t", 1);
  std::unique_ptr<Producer> old_one = Transactional(kafka, "id");
  ASSERT_TRUE(old_one->BeginTransaction().ok());
  ASSERT_TRUE(old_one->Produce({"t", 0, "k", "zombie"}, nullptr).ok());

  std::unique_ptr<Producer> new_one = Transactional(kafka, "id");
  EXPECT_TRUE(IsFenced(old_one->CommitTransaction(absl::Seconds(1))));
  EXPECT_TRUE(IsFenced(old_one->FatalError()));
  EXPECT_TRUE(kafka.Committed("t").empty());
  EXPECT_EQ(kafka.TransactionsAborted(), 1);

  ASSERT_TRUE(new_one->BeginTransaction().ok());
  ASSERT_TRUE(new_one->Produce({"t", 0, "k", "successor"}, nullptr).ok());
  ASSERT_TRUE(new_one->CommitTransaction(absl::Seconds(1)).ok());
  ASSERT_EQ(kafka.Committed("t").size(), 1u);
  EXPECT_EQ(kafka.Committed("t")[0].value, "successor");
}

TEST(FakeKafka, ATransactionOpenPastItsTimeoutIsAbortedAndItsProducerFenced) {
  FakeKafka kafka;
  kafka.CreateTopic("t", 1);
  std::unique_ptr<Producer> slow = Transactional(kafka, "slow", absl::Seconds(1));
  ASSERT_TRUE(slow->BeginTransaction().ok());
  ASSERT_TRUE(slow->Produce({"t", 0, "k", "late"}, nullptr).ok());
  absl::SleepFor(absl::Milliseconds(1100));
  EXPECT_TRUE(IsFenced(slow->CommitTransaction(absl::Seconds(1))));
  EXPECT_TRUE(kafka.Committed("t").empty());
}

TEST(FakeKafka, OffsetsSentWithATransactionAreCommittedWithItAndLookupsWaitForIt) {
  FakeKafka kafka;
  kafka.CreateTopic("in", 1);
  kafka.CreateTopic("out", 1);
  ConsumerOptions group;
  group.group_id = "g";
  std::unique_ptr<Consumer> consumer = *kafka.NewConsumer(group);
  ASSERT_TRUE(consumer->Assign({{"in", 0, kOffsetBeginning}}).ok());
  std::unique_ptr<Producer> writer = Transactional(kafka, "writer");

  ASSERT_TRUE(writer->BeginTransaction().ok());
  ASSERT_TRUE(writer->Produce({"out", 0, "k", "v"}, nullptr).ok());
  ASSERT_TRUE(writer->SendOffsetsToTransaction({{"in", 0, 7}}, *consumer, absl::Seconds(1)).ok());
  EXPECT_EQ(kafka.CommittedOffset("g", "in", 0), std::nullopt);
  EXPECT_EQ(consumer->Committed({{"in", 0, 0}}, absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded)
      << "a read_committed lookup waits while a transaction commits the offset";

  ASSERT_TRUE(writer->CommitTransaction(absl::Seconds(1)).ok());
  EXPECT_EQ(kafka.CommittedOffset("g", "in", 0), 7);
  EXPECT_EQ(consumer->Committed({{"in", 0, 0}}, absl::Seconds(1))->at(0).offset, 7);
}

TEST(FakeKafka, PartitionsMoveWhenTheirOwnerReleasesThemOrIsExpelled) {
  FakeKafka kafka;
  kafka.CreateTopic("in", 2);
  std::vector<Rebalance> first_saw;
  std::vector<Rebalance> second_saw;
  ConsumerOptions options;
  options.group_id = "g";
  options.on_rebalance = [&](const Rebalance& r) { first_saw.push_back(r); };
  std::unique_ptr<Consumer> first = *kafka.NewConsumer(options);
  options.on_rebalance = [&](const Rebalance& r) { second_saw.push_back(r); };
  std::unique_ptr<Consumer> second = *kafka.NewConsumer(options);

  ASSERT_TRUE(first->Subscribe({"in"}).ok());
  ASSERT_TRUE(first->Poll(absl::Milliseconds(10)).ok());
  ASSERT_EQ(first_saw.size(), 1u);
  EXPECT_TRUE(first_saw[0].assigned);
  EXPECT_EQ(first_saw[0].partitions.size(), 2u);

  ASSERT_TRUE(second->Subscribe({"in"}).ok());
  ASSERT_TRUE(second->Poll(absl::Milliseconds(10)).ok());
  EXPECT_TRUE(second_saw.empty()) << "partition 1 is still the first member's";
  std::unique_ptr<Producer> writer = Transactional(kafka, "writer");
  ASSERT_TRUE(writer->BeginTransaction().ok());
  EXPECT_EQ(writer->SendOffsetsToTransaction({{"in", 1, 3}}, *first, absl::Seconds(1)).code(),
            absl::StatusCode::kOk);
  ASSERT_TRUE(writer->CommitTransaction(absl::Seconds(1)).ok());

  ASSERT_TRUE(first->Poll(absl::Milliseconds(10)).ok());  // revokes partition 1
  ASSERT_EQ(first_saw.size(), 2u);
  EXPECT_FALSE(first_saw[1].assigned);
  ASSERT_EQ(first_saw[1].partitions.size(), 1u);
  EXPECT_EQ(first_saw[1].partitions[0].partition, 1);
  ASSERT_TRUE(second->Poll(absl::Milliseconds(10)).ok());
  ASSERT_EQ(second_saw.size(), 1u);
  EXPECT_TRUE(second_saw[0].assigned);
  EXPECT_EQ(second_saw[0].partitions[0].partition, 1);
  EXPECT_EQ(*second->Position("in", 1), 3) << "starts at the group's committed offset";

  // The group drops the first member (its session ran out): its partition
  // moves at once, its offsets are refused, and it learns on its next Poll.
  kafka.ExpelMember("g", 0);
  ASSERT_TRUE(writer->BeginTransaction().ok());
  EXPECT_TRUE(LostGroupMembership(
      writer->SendOffsetsToTransaction({{"in", 0, 1}}, *first, absl::Seconds(1))));
  ASSERT_TRUE(writer->AbortTransaction(absl::Seconds(1)).ok());
  ASSERT_TRUE(second->Poll(absl::Milliseconds(10)).ok());
  ASSERT_EQ(second_saw.size(), 2u);
  EXPECT_TRUE(second_saw[1].assigned);
  EXPECT_EQ(second_saw[1].partitions[0].partition, 0);
  ASSERT_TRUE(first->Poll(absl::Milliseconds(10)).ok());
  ASSERT_EQ(first_saw.size(), 3u);
  EXPECT_FALSE(first_saw[2].assigned);
  EXPECT_TRUE(first_saw[2].lost);
  EXPECT_EQ(first_saw[2].partitions[0].partition, 0);

  first->Close();
  EXPECT_EQ(first_saw.size(), 3u) << "it owned nothing since it joined again";
  EXPECT_EQ(first->Subscribe({"in"}).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(writer->BeginTransaction().ok());
  EXPECT_TRUE(LostGroupMembership(
      writer->SendOffsetsToTransaction({{"in", 0, 1}}, *first, absl::Seconds(1))));
}

}  // namespace
}  // namespace helpline::kafka::testing
