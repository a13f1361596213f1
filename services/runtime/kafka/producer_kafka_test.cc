#include "services/runtime/kafka/producer.h"

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "librdkafka/rdkafkacpp.h"
#include "gtest/gtest.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/consumer.h"
#include "tests/support/test_stack.h"

namespace helpline::kafka {
namespace {

using ::helpline::testing::CreateTestTopic;
using ::helpline::testing::ReadRecords;
using ::helpline::testing::TestKafka;
using ::helpline::testing::UniqueName;
using ::testing::HasSubstr;

TEST(ProducerKafkaTest, IdempotentProduceIsReadBackInOrderWithHeaders) {
  std::string topic = CreateTestTopic(3);
  auto producer = Producer::Create(TestKafka(), {});
  ASSERT_TRUE(producer.ok()) << producer.status();

  constexpr int kRecords = 200;
  std::atomic<int> delivered{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < kRecords; ++i) {
    OutgoingRecord record{topic, std::nullopt, "aggregate-42", std::to_string(i),
                          {{"ce_type", "helpline.test.v1.Counted"}, {"seq", std::to_string(i)}}};
    ASSERT_TRUE((*producer)
                    ->Produce(record,
                              [&](const Delivery& d) { (d.status.ok() ? delivered : failed)++; })
                    .ok());
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());
  EXPECT_EQ(delivered.load(), kRecords);
  EXPECT_EQ(failed.load(), 0);

  std::vector<Record> records = ReadRecords(topic, 3, kRecords);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(records[i].key, "aggregate-42");
    EXPECT_EQ(records[i].value, std::to_string(i)) << "same key keeps its order";
    EXPECT_EQ(records[i].partition, records[0].partition) << "same key, same partition";
    EXPECT_EQ(records[i].HeaderValue("seq"), std::to_string(i));
    EXPECT_EQ(records[i].HeaderValue("ce_type"), "helpline.test.v1.Counted");
  }
  EXPECT_GT(records.back().offset, records.front().offset);
}

TEST(ProducerKafkaTest, KeysArePartitionedLikeJavaClients) {
  // murmur2 of the key, as Kafka's Java clients and Kafka Streams compute it:
  // tools in any language agree on where an aggregate lives.
  std::string topic = CreateTestTopic(12);
  auto producer = Producer::Create(TestKafka(), {});
  ASSERT_TRUE(producer.ok());
  // Partitions that Kafka's Java client picks for these keys out of 12:
  // Utils.toPositive(Utils.murmur2(key.getBytes())) % 12 (kafka-clients 3.9.1).
  const std::vector<std::pair<std::string, int32_t>> java_partitions = {
      {"user-1", 8}, {"aggregate-42", 4}, {"0195f3c2-7b1e-7cc0-9a55-3f1d2e4b5a60", 1},
      {"expert-7", 1}};
  for (const auto& [key, partition] : java_partitions) {
    Delivery delivery = (*producer)->ProduceAndWait({topic, std::nullopt, key, "v", {}});
    ASSERT_TRUE(delivery.status.ok()) << delivery.status;
    EXPECT_EQ(delivery.partition, partition) << key;
  }
}

TEST(ProducerKafkaTest, DeliveryToAMissingTopicFailsVisibly) {
  ProducerOptions options;
  options.delivery_timeout = absl::Seconds(2);
  auto producer = Producer::Create(TestKafka(), options);
  ASSERT_TRUE(producer.ok());
  Delivery delivery =
      (*producer)->ProduceAndWait({UniqueName("no-such-topic"), std::nullopt, "k", "v", {}});
  EXPECT_FALSE(delivery.status.ok());
  EXPECT_EQ(delivery.status.code(), absl::StatusCode::kUnavailable);
}

TEST(ProducerKafkaTest, RecordLargerThanTheLimitIsRefusedAtOnce) {
  std::string topic = CreateTestTopic(1);
  ProducerOptions options;
  options.overrides = {{"message.max.bytes", "10000"}};
  auto producer = Producer::Create(TestKafka(), options);
  ASSERT_TRUE(producer.ok());
  bool called = false;
  absl::Status status = (*producer)->Produce({topic, std::nullopt, "k", std::string(20000, 'x'), {}},
                                             [&](const Delivery&) { called = true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(topic));
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(5)).ok());
  EXPECT_FALSE(called);
}

TEST(ProducerKafkaTest, BadClientSettingIsNamed) {
  ProducerOptions options;
  options.overrides = {{"no.such.setting", "1"}};
  auto producer = Producer::Create(TestKafka(), options);
  ASSERT_FALSE(producer.ok());
  EXPECT_THAT(producer.status().message(), HasSubstr("no.such.setting"));
}

// What a lone broker's controlled shutdown can leave a client with (see
// BrokerWatch): no broker at all, here from the start.
TEST(BrokerWatchKafkaTest, AClientThatKnowsNoBrokerFindsTheClusterThroughItsBootstrapServers) {
  const ClientConfig cluster = TestKafka();
  ClientConfig lost = cluster;
  lost.bootstrap_servers = "";
  std::unique_ptr<RdKafka::Conf> conf = internal::NewGlobalConf();
  ASSERT_TRUE(internal::BuildConf(lost, {}, conf.get()).ok());
  std::string error;
  std::unique_ptr<RdKafka::Producer> handle(RdKafka::Producer::create(conf.get(), error));
  ASSERT_NE(handle, nullptr) << error;
  auto cluster_answers = [&] {
    RdKafka::Metadata* metadata = nullptr;
    RdKafka::ErrorCode code = handle->metadata(false, nullptr, &metadata, 500);
    delete metadata;
    return code == RdKafka::ERR_NO_ERROR;
  };
  ASSERT_FALSE(cluster_answers()) << "a client without brokers reaches nothing by itself";

  internal::BrokerWatch watch(cluster.bootstrap_servers, absl::Milliseconds(20));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool answered = false;
  while (!answered && absl::Now() < deadline) {
    watch.Check(*handle);
    handle->poll(20);
    answered = cluster_answers();
  }
  EXPECT_TRUE(answered) << "the watch gave the client its bootstrap servers back";
}

}  // namespace
}  // namespace helpline::kafka
