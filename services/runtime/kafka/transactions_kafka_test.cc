#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/producer.h"
#include "tests/support/test_stack.h"

namespace helpline::kafka {
namespace {

using ::helpline::testing::CreateTestTopic;
using ::helpline::testing::ReadRecords;
using ::helpline::testing::TestKafka;
using ::helpline::testing::UniqueName;

std::unique_ptr<Producer> TransactionalProducer(const std::string& transactional_id) {
  ProducerOptions options;
  options.transactional_id = transactional_id;
  options.transaction_timeout = absl::Seconds(10);
  auto producer = Producer::Create(TestKafka(), options);
  EXPECT_TRUE(producer.ok()) << producer.status();
  if (!producer.ok()) return nullptr;
  absl::Status init = (*producer)->InitTransactions(absl::Seconds(30));
  EXPECT_TRUE(init.ok()) << init;
  return *std::move(producer);
}

void ProduceDelivered(Producer& producer, const std::string& topic, const std::string& value) {
  Delivery delivery = producer.ProduceAndWait({topic, 0, "key", value, {}});
  ASSERT_TRUE(delivery.status.ok()) << delivery.status;
}

std::vector<std::string> Values(const std::vector<Record>& records) {
  std::vector<std::string> values;
  for (const Record& record : records) values.push_back(record.value);
  return values;
}

TEST(TransactionsKafkaTest, CommittedReaderSeesNothingUntilCommit) {
  std::string topic = CreateTestTopic(1);
  std::unique_ptr<Producer> producer = TransactionalProducer(UniqueName("txn"));
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->BeginTransaction().ok());
  for (int i = 0; i < 5; ++i) ProduceDelivered(*producer, topic, "v" + std::to_string(i));

  // The records are in the log (an uncommitted reader sees them) ...
  EXPECT_EQ(ReadRecords(topic, 1, 5, /*read_committed=*/false).size(), 5u);
  // ... but the last stable offset stays before them while the transaction is open.
  auto committed_reader = Consumer::Create(TestKafka(), {});
  ASSERT_TRUE(committed_reader.ok());
  auto stable = (*committed_reader)->WatermarkOffsets(topic, 0, absl::Seconds(10));
  ASSERT_TRUE(stable.ok()) << stable.status();
  EXPECT_EQ(stable->second, 0) << "last stable offset";
  EXPECT_TRUE(ReadRecords(topic, 1, 1, true, absl::Seconds(1)).empty());

  ASSERT_TRUE(producer->CommitTransaction(absl::Seconds(30)).ok());
  EXPECT_THAT(Values(ReadRecords(topic, 1, 5)),
              ::testing::ElementsAre("v0", "v1", "v2", "v3", "v4"));
}

TEST(TransactionsKafkaTest, AbortedRecordsAreNeverVisible) {
  std::string topic = CreateTestTopic(1);
  std::unique_ptr<Producer> producer = TransactionalProducer(UniqueName("txn"));
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ProduceDelivered(*producer, topic, "aborted-1");
  ProduceDelivered(*producer, topic, "aborted-2");
  ASSERT_TRUE(producer->AbortTransaction(absl::Seconds(30)).ok());

  ASSERT_TRUE(producer->BeginTransaction().ok());
  ProduceDelivered(*producer, topic, "kept");
  ASSERT_TRUE(producer->CommitTransaction(absl::Seconds(30)).ok());

  // "kept" comes after the aborted records in the log: reading it means the
  // reader went past them.
  std::vector<Record> records = ReadRecords(topic, 1, 1);
  ASSERT_EQ(Values(records), std::vector<std::string>{"kept"});
  EXPECT_GE(records[0].offset, 2);
  EXPECT_TRUE(ReadRecords(topic, 1, 2, true, absl::Seconds(1)).size() == 1);
}

TEST(TransactionsKafkaTest, ConsumedOffsetsCommitWithTheTransactionOnly) {
  std::string input = CreateTestTopic(1);
  std::string output = CreateTestTopic(1);
  ConsumerOptions options;
  options.group_id = UniqueName("group");
  auto consumer = Consumer::Create(TestKafka(), options);
  ASSERT_TRUE(consumer.ok());
  std::unique_ptr<Producer> producer = TransactionalProducer(UniqueName("txn"));
  ASSERT_NE(producer, nullptr);

  ASSERT_TRUE(producer->BeginTransaction().ok());
  ProduceDelivered(*producer, output, "from-aborted");
  ASSERT_TRUE(producer->SendOffsetsToTransaction({{input, 0, 3}}, **consumer, absl::Seconds(30)).ok());
  ASSERT_TRUE(producer->AbortTransaction(absl::Seconds(30)).ok());
  auto after_abort = (*consumer)->Committed({{input, 0, 0}}, absl::Seconds(10));
  ASSERT_TRUE(after_abort.ok()) << after_abort.status();
  EXPECT_LT(after_abort->front().offset, 0) << "no offset committed by an aborted transaction";

  ASSERT_TRUE(producer->BeginTransaction().ok());
  ProduceDelivered(*producer, output, "from-committed");
  ASSERT_TRUE(producer->SendOffsetsToTransaction({{input, 0, 7}}, **consumer, absl::Seconds(30)).ok());
  ASSERT_TRUE(producer->CommitTransaction(absl::Seconds(30)).ok());
  auto after_commit = (*consumer)->Committed({{input, 0, 0}}, absl::Seconds(10));
  ASSERT_TRUE(after_commit.ok()) << after_commit.status();
  EXPECT_EQ(after_commit->front().offset, 7);
  EXPECT_EQ(Values(ReadRecords(output, 1, 1)), std::vector<std::string>{"from-committed"});
}

TEST(TransactionsKafkaTest, NewOwnerOfATransactionalIdFencesTheOldOne) {
  std::string topic = CreateTestTopic(1);
  std::string id = UniqueName("processor-0");
  std::unique_ptr<Producer> old_owner = TransactionalProducer(id);
  ASSERT_NE(old_owner, nullptr);
  ASSERT_TRUE(old_owner->BeginTransaction().ok());
  ProduceDelivered(*old_owner, topic, "zombie");

  std::unique_ptr<Producer> new_owner = TransactionalProducer(id);  // aborts the open transaction
  ASSERT_NE(new_owner, nullptr);
  ASSERT_TRUE(new_owner->BeginTransaction().ok());
  ProduceDelivered(*new_owner, topic, "owner");
  ASSERT_TRUE(new_owner->CommitTransaction(absl::Seconds(30)).ok());

  absl::Status zombie_commit = old_owner->CommitTransaction(absl::Seconds(30));
  EXPECT_EQ(zombie_commit.code(), absl::StatusCode::kFailedPrecondition) << zombie_commit;
  EXPECT_FALSE(old_owner->FatalError().ok());
  EXPECT_EQ(Values(ReadRecords(topic, 1, 1)), std::vector<std::string>{"owner"});
  EXPECT_EQ(ReadRecords(topic, 1, 2, true, absl::Seconds(1)).size(), 1u);
}

}  // namespace
}  // namespace helpline::kafka
