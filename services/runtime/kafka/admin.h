#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/access.h"
#include "services/runtime/kafka/client.h"

namespace RdKafka {
class Producer;
}

namespace helpline::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  std::map<std::string, std::string> configs;  // retention.ms, cleanup.policy ...
};

// Cluster administration that services and tools need: readiness and topics.
class Admin {
 public:
  static absl::StatusOr<std::unique_ptr<Admin>> Create(const ClientConfig& client);
  ~Admin();

  // OK once a metadata request succeeds (a broker really answers), else
  // UNAVAILABLE after `timeout`.
  absl::Status WaitUntilReachable(absl::Duration timeout);

  // Creates the topics that do not exist. A topic that exists with another
  // partition count is FAILED_PRECONDITION: keys would land elsewhere.
  // Returns the names it created.
  absl::StatusOr<std::vector<std::string>> CreateTopics(const std::vector<TopicSpec>& topics,
                                                        absl::Duration timeout);

  // Partition count of each existing topic, by name.
  absl::StatusOr<std::map<std::string, int>> ListTopics(absl::Duration timeout);

  // Partition count of an existing topic; FAILED_PRECONDITION naming it if
  // it does not exist.
  absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout);

  // Adds these ALLOW rules (from any host); rules that exist stay as they are.
  // PERMISSION_DENIED if this client's principal may not change ACLs.
  absl::Status CreateAcls(const std::vector<AclBinding>& acls, absl::Duration timeout);

  absl::Status DeleteTopics(const std::vector<std::string>& names, absl::Duration timeout);

  // Sets these configs of an existing topic (retention.ms,
  // max.message.bytes ...), leaving the others as they are.
  absl::Status AlterTopicConfig(const std::string& topic,
                                const std::map<std::string, std::string>& configs,
                                absl::Duration timeout);

 private:
  Admin() = default;
  // Every partition of these topics has a leader in the metadata.
  bool LeadersKnown(const std::vector<std::string>& topics);
  std::unique_ptr<RdKafka::Producer> handle_;
};

// Admin::PartitionCount with an admin client of its own.
absl::StatusOr<int> PartitionCount(const ClientConfig& client, const std::string& topic);

}  // namespace helpline::kafka
