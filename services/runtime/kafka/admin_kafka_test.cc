#include "services/runtime/kafka/admin.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/runtime/kafka/topics.h"
#include "tests/support/test_stack.h"

namespace helpline::kafka {
namespace {

using ::helpline::testing::TestKafka;
using ::helpline::testing::UniqueName;

TEST(AdminKafkaTest, CreatesTheDeclaredTopicsIdempotently) {
  std::ifstream file(::helpline::testing::SourcePath("deploy/topics.json"));
  std::stringstream declaration;
  declaration << file.rdbuf();
  TopicPlan plan;
  plan.name_prefix = UniqueName("admin") + ".";
  plan.partitions = 2;
  auto topics = TopicsFromDeclaration(declaration.str(), plan);
  ASSERT_TRUE(topics.ok());

  auto admin = Admin::Create(TestKafka());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->WaitUntilReachable(absl::Seconds(10)).ok());
  auto created = (*admin)->CreateTopics(*topics, absl::Seconds(60));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->size(), topics->size());

  auto again = (*admin)->CreateTopics(*topics, absl::Seconds(60));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->empty()) << "a second run creates nothing";

  auto listed = (*admin)->ListTopics(absl::Seconds(10));
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->at(plan.name_prefix + "helpline.payments.events"), 2);

  std::vector<std::string> names;
  for (const TopicSpec& topic : *topics) names.push_back(topic.name);
  EXPECT_TRUE((*admin)->DeleteTopics(names, absl::Seconds(60)).ok());
}

TEST(AdminKafkaTest, ExistingTopicWithOtherPartitionCountIsRefused) {
  auto admin = Admin::Create(TestKafka());
  ASSERT_TRUE(admin.ok());
  std::string name = UniqueName("admin-mismatch");
  ASSERT_TRUE((*admin)->CreateTopics({{name, 3, 1, {}}}, absl::Seconds(30)).ok());
  auto again = (*admin)->CreateTopics({{name, 6, 1, {}}}, absl::Seconds(30));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), ::testing::HasSubstr(name + " has 3 partitions"));
}

TEST(AdminKafkaTest, InvalidTopicConfigIsReportedByName) {
  auto admin = Admin::Create(TestKafka());
  ASSERT_TRUE(admin.ok());
  std::string name = UniqueName("admin-bad");
  auto created =
      (*admin)->CreateTopics({{name, 1, 1, {{"cleanup.policy", "shred"}}}}, absl::Seconds(30));
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), ::testing::HasSubstr(name));
}

TEST(AdminKafkaTest, UnreachableClusterIsUnavailableAfterTheTimeout) {
  ClientConfig nowhere;
  nowhere.bootstrap_servers = "127.0.0.1:" + std::to_string(::helpline::testing::PickFreePort());
  auto admin = Admin::Create(nowhere);
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ((*admin)->WaitUntilReachable(absl::Seconds(1)).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace helpline::kafka
