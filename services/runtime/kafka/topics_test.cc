#include "services/runtime/kafka/topics.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_stack.h"

namespace helpline::kafka {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

const TopicSpec* Find(const std::vector<TopicSpec>& topics, const std::string& name) {
  for (const TopicSpec& topic : topics) {
    if (topic.name == name) return &topic;
  }
  return nullptr;
}

TEST(TopicsTest, DeclaredListHasEveryServiceTopicWithItsRetention) {
  TopicPlan plan;
  plan.name_prefix = "t1.";
  plan.partitions = 12;
  plan.replication_factor = 3;
  plan.extra_configs = {{"min.insync.replicas", "2"}};
  absl::StatusOr<std::vector<TopicSpec>> topics =
      TopicsFromDeclaration(ReadFile(testing::SourcePath("deploy/topics.json")), plan);
  ASSERT_TRUE(topics.ok()) << topics.status();
  EXPECT_EQ(topics->size(), 5u * 4u + 2u);
  for (const char* service : {"identity", "catalog", "matching", "sessions", "payments"}) {
    for (const char* kind : {"commands", "events", "replies", "snapshots"}) {
      const TopicSpec* topic = Find(*topics, "t1." + ServiceTopic(service, kind));
      ASSERT_NE(topic, nullptr) << service << " " << kind;
      EXPECT_EQ(topic->partitions, 12);
      EXPECT_EQ(topic->replication_factor, 3);
      EXPECT_EQ(topic->configs.at("min.insync.replicas"), "2");
    }
    EXPECT_EQ(Find(*topics, "t1." + ServiceTopic(service, "events"))->configs.at("retention.ms"),
              "-1");
    EXPECT_EQ(
        Find(*topics, "t1." + ServiceTopic(service, "snapshots"))->configs.at("cleanup.policy"),
        "compact");
  }
  ASSERT_NE(Find(*topics, "t1.helpline.deadletter"), nullptr);
  const TopicSpec* keys = Find(*topics, "t1.helpline.identity.keys");
  ASSERT_NE(keys, nullptr);
  EXPECT_EQ(keys->configs.at("cleanup.policy"), "compact");
}

TEST(TopicsTest, BadDeclarationsAreRejectedWithThePlace) {
  TopicPlan plan;
  EXPECT_FALSE(TopicsFromDeclaration("[]", plan).ok());
  absl::StatusOr<std::vector<TopicSpec>> topics = TopicsFromDeclaration(
      R"({"services": ["a"], "per_service": {"events": {"configs": {"retention.ms": -1}}}})", plan);
  ASSERT_FALSE(topics.ok());
  EXPECT_THAT(topics.status().message(), ::testing::HasSubstr("per_service.events.configs.retention.ms"));
  plan.partitions = 0;
  EXPECT_FALSE(TopicsFromDeclaration(R"({"services": []})", plan).ok());
}

}  // namespace
}  // namespace helpline::kafka
