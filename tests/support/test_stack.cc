#include "tests/support/test_stack.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <map>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/runtime/kafka/access.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/topics.h"
#include "nlohmann/json.hpp"

namespace helpline::testing {
namespace {

std::map<std::string, std::string> ReadStackEnvironment(const std::string& dir = TestStackDir()) {
  std::map<std::string, std::string> values;
  std::string path = absl::StrCat(dir, "/stack.env");
  std::ifstream file(path);
  if (!file) {
    ADD_FAILURE() << "no test stack: " << path
                  << " is missing (the stack.start fixture starts it; run through ctest)";
    return values;
  }
  std::string line;
  while (std::getline(file, line)) {
    size_t equals = line.find('=');
    if (equals != std::string::npos) values[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return values;
}

}  // namespace

std::string TestStackDir() { return HELPLINE_TEST_STACK_DIR; }

kafka::ClientConfig StackKafka(const std::string& stack_dir, const std::string& principal) {
  std::map<std::string, std::string> values = ReadStackEnvironment(stack_dir);
  kafka::ClientConfig config;
  config.bootstrap_servers = values["KAFKA_BOOTSTRAP_SERVERS"];
  if (values["KAFKA_SECURITY_PROTOCOL"] == "sasl_plaintext") {
    config.properties["security.protocol"] = "sasl_plaintext";
    config.properties["sasl.mechanisms"] = values["KAFKA_SASL_MECHANISM"];
    config.properties["sasl.username"] = principal;
    std::string password = ReadText(absl::StrCat(values["KAFKA_SECRETS_DIR"], "/kafka-", principal));
    EXPECT_FALSE(password.empty()) << "no Kafka password for " << principal << " in " << stack_dir;
    while (!password.empty() && password.back() == '\n') password.pop_back();
    config.properties["sasl.password"] = password;
  }
  return config;
}

kafka::ClientConfig TestKafka() { return StackKafka(TestStackDir(), "admin"); }

std::vector<std::string> KafkaFlags(const kafka::ClientConfig& client) {
  std::vector<std::string> flags{"--bootstrap-servers", client.bootstrap_servers};
  for (const auto& [key, value] : client.properties) {
    flags.insert(flags.end(), {"--property", absl::StrCat(key, "=", value)});
  }
  return flags;
}

nlohmann::json KafkaConfigJson(const kafka::ClientConfig& client) {
  nlohmann::json config = {{"bootstrap_servers", client.bootstrap_servers}};
  auto copy = [&](const char* property, const char* key) {
    if (auto found = client.properties.find(property); found != client.properties.end()) {
      config[key] = found->second;
    }
  };
  copy("security.protocol", "security_protocol");
  copy("sasl.mechanisms", "sasl_mechanism");
  copy("sasl.username", "sasl_username");
  copy("sasl.password", "sasl_password");
  return config;
}

redis::ClientOptions TestRedis() {
  std::map<std::string, std::string> values = ReadStackEnvironment();
  redis::ClientOptions options;
  options.host = values["REDIS_HOST"];
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(values["REDIS_PORT"], &port)) << "REDIS_PORT in stack.env";
  options.port = port;
  return options;
}

std::string CreateTestTopic(int partitions) {
  std::string name = UniqueName("test");
  absl::StatusOr<std::unique_ptr<kafka::Admin>> admin = kafka::Admin::Create(TestKafka());
  EXPECT_TRUE(admin.ok()) << admin.status();
  if (!admin.ok()) return name;
  auto created = (*admin)->CreateTopics({{name, partitions, 1, {}}}, absl::Seconds(30));
  EXPECT_TRUE(created.ok()) << created.status();
  return name;
}

std::vector<kafka::Record> ReadRecords(const std::string& topic, int partitions, size_t count,
                                       bool read_committed, absl::Duration wait) {
  kafka::ConsumerOptions options;
  options.read_committed = read_committed;
  auto consumer = kafka::Consumer::Create(TestKafka(), options);
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  std::vector<kafka::Record> records;
  if (!consumer.ok()) return records;
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (int p = 0; p < partitions; ++p) assignment.push_back({topic, p, kafka::kOffsetBeginning});
  EXPECT_TRUE((*consumer)->Assign(assignment).ok());
  absl::Time deadline = absl::Now() + wait;
  while (records.size() < count && absl::Now() < deadline) {
    auto record = (*consumer)->Poll(absl::Milliseconds(100));
    if (record.ok() && record->has_value()) records.push_back(**record);
  }
  return records;
}

void CreateServiceTopics(const std::string& service, const std::string& prefix, int partitions) {
  CreateServiceTopics(TestKafka(), service, prefix, partitions);
}

void CreateServiceTopics(const kafka::ClientConfig& client, const std::string& service,
                         const std::string& prefix, int partitions) {
  std::ifstream file(SourcePath("deploy/topics.json"));
  std::stringstream text;
  text << file.rdbuf();
  nlohmann::json declaration = nlohmann::json::parse(text.str());
  declaration["services"] = nlohmann::json::array({service});
  nlohmann::json& service_access = declaration["access"]["services"];
  service_access = nlohmann::json{{service, service_access.value(service, nlohmann::json::object())}};
  kafka::TopicPlan plan;
  plan.name_prefix = prefix;
  plan.partitions = partitions;
  auto topics = kafka::TopicsFromDeclaration(declaration.dump(), plan);
  ASSERT_TRUE(topics.ok()) << topics.status();
  auto admin = kafka::Admin::Create(client);
  ASSERT_TRUE(admin.ok()) << admin.status();
  auto created = (*admin)->CreateTopics(*topics, absl::Seconds(60));
  ASSERT_TRUE(created.ok()) << created.status();
  if (!client.properties.contains("sasl.username")) return;  // no authorizer
  kafka::AccessPlan access;
  access.name_prefix = prefix;
  auto acls = kafka::AclsFromDeclaration(declaration.dump(), access);
  ASSERT_TRUE(acls.ok()) << acls.status();
  absl::Status allowed = (*admin)->CreateAcls(*acls, absl::Seconds(60));
  ASSERT_TRUE(allowed.ok()) << allowed;
}

std::vector<kafka::Record> ReadToEnd(const std::string& topic, int partitions) {
  return ReadToEnd(TestKafka(), topic, partitions);
}

std::vector<kafka::Record> ReadToEnd(const kafka::ClientConfig& client, const std::string& topic,
                                     int partitions) {
  std::vector<kafka::Record> records;
  auto consumer = kafka::Consumer::Create(client, kafka::ConsumerOptions{});
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  if (!consumer.ok()) return records;
  std::vector<int64_t> ends;
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (int p = 0; p < partitions; ++p) {
    auto watermarks = (*consumer)->WatermarkOffsets(topic, p, absl::Seconds(10));
    EXPECT_TRUE(watermarks.ok()) << watermarks.status();
    ends.push_back(watermarks.ok() ? watermarks->second : 0);
    assignment.push_back({topic, p, kafka::kOffsetBeginning});
  }
  EXPECT_TRUE((*consumer)->Assign(assignment).ok());
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    auto record = (*consumer)->Poll(absl::Milliseconds(50));
    if (record.ok() && record->has_value()) records.push_back(**record);
    bool done = true;
    for (int p = 0; p < partitions && done; ++p) {
      if (ends[p] == 0) continue;
      auto position = (*consumer)->Position(topic, p);
      done = position.ok() && *position >= ends[p];
    }
    if (done) return records;
  }
  ADD_FAILURE() << "could not read " << topic << " to its end within 60 s";
  return records;
}

std::string UniqueName(std::string_view prefix) {
  static std::mt19937_64 generator{std::random_device{}()};
  return absl::StrCat(std::string(prefix), "-", getpid(), "-", generator() % 1000000000);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string SourcePath(std::string_view relative) {
  return absl::StrCat(HELPLINE_SOURCE_DIR, "/", std::string(relative));
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace helpline::testing
