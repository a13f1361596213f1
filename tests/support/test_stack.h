#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/runtime/kafka/client.h"
#include "services/runtime/redis/redis_client.h"

// What tests need to reach the test run's own Kafka and Redis, which the
// `stack.start` fixture started (deploy/local/stack start) and described in
// <build>/test-stack/stack.env.
namespace helpline::testing {

// Fails the current test (and returns an empty config) if the stack is not up.
// As the admin principal (a super user: creates topics and ACLs, reads and
// writes anything).
kafka::ClientConfig TestKafka();
redis::ClientOptions TestRedis();

// The Kafka of the stack started in `stack_dir` (deploy/local/stack), as
// `principal` ("admin", "identity", "analyst" ...) when it authenticates.
kafka::ClientConfig StackKafka(const std::string& stack_dir, const std::string& principal);
std::string TestStackDir();

// A service's "kafka" config section for this client.
nlohmann::json KafkaConfigJson(const kafka::ClientConfig& client);
// The same as command-line flags of Helpline's tools: --bootstrap-servers
// and a --property KEY=VALUE for each librdkafka setting.
std::vector<std::string> KafkaFlags(const kafka::ClientConfig& client);

// Creates a topic with a unique name for one test and returns the name.
std::string CreateTestTopic(int partitions);

// Reads from the beginning of the topic's partitions until `count` records
// came or `wait` passed.
std::vector<kafka::Record> ReadRecords(const std::string& topic, int partitions, size_t count,
                                       bool read_committed = true,
                                       absl::Duration wait = absl::Seconds(30));

// Creates helpline.<service>.{commands,events,replies,snapshots} and the
// dead-letter topic, all with `prefix`, with the settings of
// deploy/topics.json, and (on a Kafka that authenticates) the service's
// ACLs of deploy/topics.json for those topics.
void CreateServiceTopics(const std::string& service, const std::string& prefix, int partitions);
void CreateServiceTopics(const kafka::ClientConfig& client, const std::string& service,
                         const std::string& prefix, int partitions);

// Every committed record of the topic's partitions, up to their ends now.
std::vector<kafka::Record> ReadToEnd(const std::string& topic, int partitions);
std::vector<kafka::Record> ReadToEnd(const kafka::ClientConfig& client, const std::string& topic,
                                     int partitions);

// A name no other test or run uses: "<prefix>-<pid>-<random>".
std::string UniqueName(std::string_view prefix);

// The whole file (empty when it cannot be read).
std::string ReadText(const std::string& path);

// An absolute path inside the source tree.
std::string SourcePath(std::string_view relative);

// A TCP port that was free a moment ago on 127.0.0.1.
int PickFreePort();

}  // namespace helpline::testing
