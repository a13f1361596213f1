#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace helpline::kafka {

// One ALLOW rule of Kafka's authorizer: `principal` may do `operation` on
// the resources named `name` (exactly, or every name starting with it).
struct AclBinding {
  enum class Resource { kTopic, kGroup, kTransactionalId };
  enum class Operation { kRead, kWrite };
  std::string principal;  // "User:catalog"
  Resource resource = Resource::kTopic;
  std::string name;
  bool prefixed = false;
  Operation operation = Operation::kRead;

  friend bool operator==(const AclBinding&, const AclBinding&) = default;
};

// "User:catalog may write topic helpline.catalog.events"
std::string Describe(const AclBinding& binding);

// How the declared access (deploy/topics.json "access") becomes rules in one
// cluster.
struct AccessPlan {
  std::string name_prefix;  // the topics' prefix (tests); groups and transactional ids carry it too
  // Declared name ("identity", "analyst") to the cluster's principal; a name
  // not here is "User:<name>".
  std::map<std::string, std::string> principals;
};

// Each service may read and write its own commands, events, replies and
// snapshots topics and the shared topics it "writes", read what it "reads",
// write the dead letters, and use the consumer groups and transactional ids
// named "<service>-..." or "<service>. ..." (prefixed); each reader may read
// what it "reads" in groups starting with its "group_prefix" (which may not
// start with a service's name). Nothing else: no principal but the admin (a
// super user) may create or change anything. A mistake in the declaration,
// or a principal for an undeclared name, is INVALID_ARGUMENT naming it.
absl::StatusOr<std::vector<AclBinding>> AclsFromDeclaration(const std::string& json_text,
                                                            const AccessPlan& plan);

}  // namespace helpline::kafka
