#include "services/runtime/kafka/topics.h"

#include "services/runtime/kafka/access.h"

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
  EXPECT_EQ(topics->size(), 5u * 5u + 1u);
  for (const char* service : {"identity", "catalog", "matching", "sessions", "payments"}) {
    for (const char* kind : {"commands", "events", "replies", "snapshots", "keys"}) {
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
  for (const std::string& service : {"identity", "catalog", "sessions"}) {
    EXPECT_EQ(Find(*topics, "t1." + ServiceTopic(service, "keys"))->configs.at("cleanup.policy"),
              "compact");
  }
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

bool Allows(const std::vector<AclBinding>& acls, const std::string& principal,
            AclBinding::Resource resource, const std::string& name, AclBinding::Operation operation) {
  for (const AclBinding& acl : acls) {
    if (acl.principal != principal || acl.resource != resource || acl.operation != operation) {
      continue;
    }
    if (acl.prefixed ? name.starts_with(acl.name) : name == acl.name) return true;
  }
  return false;
}

TEST(AccessTest, EachServiceWritesOnlyItsOwnTopicsAndReadsWhatItConsumes) {
  AccessPlan plan;
  plan.name_prefix = "t1.";
  plan.principals["payments"] = "User:helpline-payments";
  auto acls =
      AclsFromDeclaration(ReadFile(::helpline::testing::SourcePath("deploy/topics.json")), plan);
  ASSERT_TRUE(acls.ok()) << acls.status();
  using Op = AclBinding::Operation;
  using Resource = AclBinding::Resource;
  const std::vector<std::string> services = {"identity", "catalog", "matching", "sessions",
                                             "payments"};
  for (const std::string& writer : services) {
    const std::string principal =
        writer == "payments" ? "User:helpline-payments" : "User:" + writer;
    for (const std::string& owner : services) {
      for (const char* kind : {"commands", "events", "replies", "snapshots", "keys"}) {
        const std::string topic = "t1." + ServiceTopic(owner, kind);
        EXPECT_EQ(Allows(*acls, principal, Resource::kTopic, topic, Op::kWrite), writer == owner)
            << writer << " writing " << topic;
      }
    }
    EXPECT_TRUE(Allows(*acls, principal, Resource::kTopic, "t1.helpline.deadletter", Op::kWrite));
    EXPECT_EQ(Allows(*acls, principal, Resource::kTopic, "t1.helpline.identity.keys", Op::kRead),
              writer == "identity");
    EXPECT_TRUE(Allows(*acls, principal, Resource::kGroup, "t1." + writer + "-processor", Op::kRead));
    EXPECT_TRUE(Allows(*acls, principal, Resource::kTransactionalId,
                       "t1." + writer + "-processor-replica-0", Op::kWrite));
    EXPECT_FALSE(Allows(*acls, principal, Resource::kTransactionalId,
                        writer == "identity" ? "t1.catalog-processor-0" : "t1.identity-processor-0",
                        Op::kWrite));
    EXPECT_TRUE(Allows(*acls, principal, Resource::kGroup, "t1." + writer + ".reactions", Op::kRead));
    EXPECT_FALSE(Allows(*acls, principal, Resource::kGroup, "t1." + writer + "x.reactions", Op::kRead))
        << "a service named like another plus more reaches none of its groups";
  }
  // The consumers of catalog's events: identity (roles), matching, payments.
  EXPECT_TRUE(Allows(*acls, "User:identity", Resource::kTopic, "t1.helpline.catalog.events", Op::kRead));
  EXPECT_FALSE(Allows(*acls, "User:sessions", Resource::kTopic, "t1.helpline.catalog.events", Op::kRead));
  // The analysts read every events topic and write nothing.
  for (const std::string& service : services) {
    EXPECT_TRUE(Allows(*acls, "User:analyst", Resource::kTopic,
                       "t1." + ServiceTopic(service, "events"), Op::kRead));
    EXPECT_FALSE(Allows(*acls, "User:analyst", Resource::kTopic,
                        "t1." + ServiceTopic(service, "commands"), Op::kRead));
  }
  for (const AclBinding& acl : *acls) {
    EXPECT_FALSE(acl.principal == "User:analyst" && acl.operation == Op::kWrite) << Describe(acl);
  }
}

TEST(AccessTest, AMistakeInTheDeclarationIsNamed) {
  EXPECT_THAT(AclsFromDeclaration(R"({"services": ["identity"], "access": {"services": {"idnetity": {}}}})",
                                  {})
                  .status()
                  .message(),
              ::testing::HasSubstr("access.services.idnetity: not a declared service"));
  EXPECT_THAT(AclsFromDeclaration(
                  R"({"services": ["identity"], "access": {"services": {"identity": {"reads": "x"}}}})", {})
                  .status()
                  .message(),
              ::testing::HasSubstr("access.services.identity.reads: not a list"));
  EXPECT_THAT(AclsFromDeclaration(R"({"services": [], "access": {"readers": {"analyst": {"reads": []}}}})", {})
                  .status()
                  .message(),
              ::testing::HasSubstr("access.readers.analyst.group_prefix"));
  EXPECT_THAT(AclsFromDeclaration(
                  R"({"services": ["identity"], "access": {"readers": {"r": {"reads": [], "group_prefix": "identity."}}}})", {})
                  .status()
                  .message(),
              ::testing::HasSubstr("starts with the service name identity"));
  EXPECT_THAT(AclsFromDeclaration(
                  R"({"services": ["identity", "catalog"], "per_service": {"events": {}},
                      "access": {"services": {"catalog": {"writes": ["helpline.identity.events"]}}}})", {})
                  .status()
                  .message(),
              ::testing::HasSubstr("access.services.catalog.writes: helpline.identity.events is not a shared topic"));
  AccessPlan misspelt;
  misspelt.principals["catalgo"] = "User:x";
  EXPECT_THAT(AclsFromDeclaration(R"({"services": ["catalog"]})", misspelt).status().message(),
              ::testing::HasSubstr("principal for catalgo"));
}

}  // namespace
}  // namespace helpline::kafka
