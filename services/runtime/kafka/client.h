#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/runtime/server/config.h"

namespace RdKafka {
class Conf;
class Error;
class Handle;
}  // namespace RdKafka

namespace helpline::kafka {

// How consumer groups move partitions between members. Both move only the
// partitions that change owner: "consumer" is KIP-848 (brokers >= 4.0, the
// broker computes assignments and keeps the session), "classic" the older
// protocol with the cooperative-sticky assignor.
enum class GroupProtocol { kConsumer, kClassic };

// How to reach a Kafka cluster. `properties` carries any further librdkafka
// setting (security.protocol, sasl.*, ssl.*, client.id ...).
struct ClientConfig {
  std::string bootstrap_servers;
  std::map<std::string, std::string> properties;
  GroupProtocol group_protocol = GroupProtocol::kConsumer;
};

// The librdkafka version linked into this binary ("2.14.2").
std::string LibraryVersion();

// Adds kafka.* keys (bootstrap servers, SASL/TLS) to a service's schema.
void AddKafkaKeys(server::ConfigSchema& schema);
ClientConfig ClientConfigFromConfig(const server::Config& config);

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

// A record read from Kafka.
struct Record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  absl::Time timestamp;

  // The value of the first header with this key, if any.
  std::optional<std::string> HeaderValue(const std::string& key) const;
};

// A record to write. Without `partition`, the key's hash picks it (the same
// murmur2 partitioner as Kafka's Java clients, so every client agrees).
struct OutgoingRecord {
  std::string topic;
  std::optional<int32_t> partition;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  // A null value: in a compacted topic, erases the key.
  bool tombstone = false;
};

// Special offsets for Consumer::Assign.
inline constexpr int64_t kOffsetBeginning = -2;
inline constexpr int64_t kOffsetEnd = -1;

struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = kOffsetBeginning;
  bool operator==(const TopicPartitionOffset&) const = default;
};

namespace internal {

// A librdkafka configuration with the client settings and then `overrides`
// applied; an unknown or invalid property is INVALID_ARGUMENT naming it.
absl::Status BuildConf(const ClientConfig& client, const std::map<std::string, std::string>& overrides,
                       RdKafka::Conf* conf);
std::unique_ptr<RdKafka::Conf> NewGlobalConf();
int ToMillis(absl::Duration duration);

// librdkafka forgets each broker that a metadata answer leaves out, and a
// lone broker in controlled shutdown leaves itself out: a client that got
// that answer knows no broker at all, and nothing makes it ask the bootstrap
// servers again (librdkafka 2.14). Its consumer group then never finds its
// coordinator and its fetches and sends wait forever. The thread that polls
// a client calls Check on every poll; at most every `look_every` it looks
// for a broker to ask, and after two looks in a row found none, adds the
// bootstrap servers back, again at most every two minutes while none
// answers (a broker it knew under the same address may then be there twice
// for a moment: the next metadata answer drops the bootstrap one).
class BrokerWatch {
 public:
  explicit BrokerWatch(std::string bootstrap_servers,
                       absl::Duration look_every = absl::Seconds(15));
  void Check(RdKafka::Handle& handle);

 private:
  bool NoBrokerTwice(RdKafka::Handle& handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string bootstrap_servers_;
  const absl::Duration look_every_;
  absl::Mutex mutex_;
  absl::Time next_look_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  int looks_without_broker_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Time next_bootstrap_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
};

}  // namespace internal
}  // namespace helpline::kafka
