// The test run's Kafka authenticates (SASL/SCRAM) and authorizes (ACLs from
// deploy/topics.json): what one service's credentials can and cannot do.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/producer.h"
#include "tests/support/test_stack.h"

namespace helpline::kafka {
namespace {

using ::helpline::testing::CreateServiceTopics;
using ::helpline::testing::StackKafka;
using ::helpline::testing::TestKafka;
using ::helpline::testing::TestStackDir;
using ::helpline::testing::UniqueName;
using ::testing::HasSubstr;

ClientConfig As(const std::string& principal) { return StackKafka(TestStackDir(), principal); }

class KafkaAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(TestKafka().properties.count("sasl.username"), 1u)
        << "the test run's Kafka must authenticate (deploy/local/stack without HL_KAFKA_SASL=no)";
    prefix_ = UniqueName("access") + ".";
    for (const char* service : {"identity", "catalog"}) CreateServiceTopics(service, prefix_, 1);
  }

  Delivery Write(const std::string& principal, const std::string& topic) {
    ProducerOptions options;
    options.delivery_timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Producer>> producer = Producer::Create(As(principal), options);
    EXPECT_TRUE(producer.ok()) << producer.status();
    if (!producer.ok()) return {producer.status()};
    return (*producer)->ProduceAndWait(
        {prefix_ + topic, std::nullopt, "user-1", "forged", {{"ce_type", "GrantRole"}}});
  }

  // The first record or error a consumer as `principal` gets from the topic
  // within `wait` (a topic it may not read gives it nothing, or an error).
  absl::StatusOr<std::optional<Record>> Read(const std::string& principal, const std::string& topic,
                                             absl::Duration wait = absl::Seconds(15)) {
    absl::StatusOr<std::unique_ptr<Consumer>> consumer = Consumer::Create(As(principal), {});
    if (!consumer.ok()) return consumer.status();
    if (absl::Status s = (*consumer)->Assign({{prefix_ + topic, 0, kOffsetBeginning}}); !s.ok()) {
      return s;
    }
    absl::Time deadline = absl::Now() + wait;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::optional<Record>> polled = (*consumer)->Poll(absl::Milliseconds(200));
      if (!polled.ok() || polled->has_value()) return polled;
    }
    return std::optional<Record>();
  }

  std::string prefix_;
};

TEST_F(KafkaAccessTest, CatalogsCredentialsCannotWriteIdentitysCommands) {
  Delivery forged = Write("catalog", "helpline.identity.commands");
  EXPECT_FALSE(forged.status.ok()) << "catalog wrote a command to identity";
  EXPECT_THAT(forged.status.message(), HasSubstr("uthoriz"));
  for (const char* topic : {"helpline.identity.events", "helpline.identity.snapshots",
                            "helpline.identity.keys"}) {
    EXPECT_FALSE(Write("catalog", topic).status.ok()) << "catalog wrote to " << topic;
  }
  // What the declaration gives each: its own topics, and dead letters.
  EXPECT_TRUE(Write("identity", "helpline.identity.commands").status.ok());
  EXPECT_TRUE(Write("catalog", "helpline.catalog.commands").status.ok());
  EXPECT_TRUE(Write("catalog", "helpline.deadletter").status.ok());
  // The analysts' principal writes nothing.
  EXPECT_FALSE(Write("analyst", "helpline.catalog.events").status.ok());
}

TEST_F(KafkaAccessTest, ServicesReadWhatTheyConsumeAndNoOneElsesSecrets) {
  ASSERT_TRUE(Write("identity", "helpline.identity.keys").status.ok());
  ASSERT_TRUE(Write("catalog", "helpline.catalog.events").status.ok());

  absl::StatusOr<std::optional<Record>> keys = Read("identity", "helpline.identity.keys");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->has_value());
  // Identity consumes catalog's events (an approved expert's role).
  absl::StatusOr<std::optional<Record>> approved = Read("identity", "helpline.catalog.events");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_TRUE(approved->has_value());

  absl::StatusOr<std::optional<Record>> stolen =
      Read("catalog", "helpline.identity.keys", absl::Seconds(5));
  EXPECT_FALSE(stolen.ok() && stolen->has_value()) << "catalog read identity's data keys";
  absl::StatusOr<std::optional<Record>> analysed =
      Read("analyst", "helpline.identity.keys", absl::Seconds(5));
  EXPECT_FALSE(analysed.ok() && analysed->has_value()) << "the analyst read identity's data keys";

  // Each service's keys to what people typed are its own too.
  ASSERT_TRUE(Write("catalog", "helpline.catalog.keys").status.ok());
  EXPECT_FALSE(Write("identity", "helpline.catalog.keys").status.ok())
      << "identity wrote catalog's data keys";
  absl::StatusOr<std::optional<Record>> others =
      Read("identity", "helpline.catalog.keys", absl::Seconds(5));
  EXPECT_FALSE(others.ok() && others->has_value()) << "identity read catalog's data keys";
}

TEST_F(KafkaAccessTest, NoServiceCanTakeAnotherServicesTransactionalId) {
  ProducerOptions options;
  options.transactional_id = prefix_ + "identity-processor-x";
  absl::StatusOr<std::unique_ptr<Producer>> catalog = Producer::Create(As("catalog"), options);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  absl::Status fenced = (*catalog)->InitTransactions(absl::Seconds(10));
  EXPECT_FALSE(fenced.ok()) << "catalog could fence identity's processor";

  absl::StatusOr<std::unique_ptr<Producer>> identity = Producer::Create(As("identity"), options);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_TRUE((*identity)->InitTransactions(absl::Seconds(30)).ok());
}

TEST_F(KafkaAccessTest, ClientsWithoutTheRightPasswordAreNotServed) {
  ClientConfig anonymous;
  anonymous.bootstrap_servers = TestKafka().bootstrap_servers;
  ClientConfig wrong = As("identity");
  wrong.properties["sasl.password"] = "guessed";
  for (const ClientConfig& client : {anonymous, wrong}) {
    absl::StatusOr<std::unique_ptr<Admin>> admin = Admin::Create(client);
    ASSERT_TRUE(admin.ok()) << admin.status();
    EXPECT_FALSE((*admin)->WaitUntilReachable(absl::Seconds(3)).ok());
  }
}

TEST_F(KafkaAccessTest, OnlyTheAdminCreatesTopicsAndAcls) {
  absl::StatusOr<std::unique_ptr<Admin>> catalog = Admin::Create(As("catalog"));
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  absl::StatusOr<std::vector<std::string>> created =
      (*catalog)->CreateTopics({{prefix_ + "helpline.catalog.extra", 1, 1, {}}}, absl::Seconds(10));
  EXPECT_FALSE(created.ok() && !created->empty()) << "catalog created a topic";
  absl::Status granted = (*catalog)->CreateAcls(
      {{"User:catalog", AclBinding::Resource::kTopic, prefix_ + "helpline.identity.commands", false,
        AclBinding::Operation::kWrite}},
      absl::Seconds(10));
  EXPECT_EQ(granted.code(), absl::StatusCode::kPermissionDenied) << granted;
  EXPECT_FALSE(Write("catalog", "helpline.identity.commands").status.ok());
}

}  // namespace
}  // namespace helpline::kafka
