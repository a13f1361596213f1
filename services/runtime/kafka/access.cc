#include "services/runtime/kafka/access.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/runtime/kafka/topics.h"

namespace helpline::kafka {
namespace {

// The group id of consumers that only assign partitions and never commit
// (read models, reply readers): librdkafka insists on one.
constexpr char kUnusedGroup[] = "helpline-unused";
constexpr char kDeadLetterTopic[] = "helpline.deadletter";

absl::StatusOr<nlohmann::json> Parse(const std::string& json_text) {
  nlohmann::json declaration = nlohmann::json::parse(json_text, nullptr, false);
  if (declaration.is_discarded() || !declaration.is_object()) {
    return absl::InvalidArgumentError("topic declaration: not a JSON object");
  }
  const nlohmann::json& access = declaration.value("access", nlohmann::json::object());
  if (!access.is_object() || !access.value("services", nlohmann::json::object()).is_object() ||
      !access.value("readers", nlohmann::json::object()).is_object()) {
    return absl::InvalidArgumentError(
        "topic declaration: 'access' must hold objects 'services' and 'readers'");
  }
  return declaration;
}

// The entry's list of topic names under `field`, or an error naming it.
absl::StatusOr<std::vector<std::string>> Names(const nlohmann::json& entry, const char* field,
                                               const std::string& where) {
  std::vector<std::string> names;
  const nlohmann::json list = entry.value(field, nlohmann::json::array());
  if (!list.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".", field, ": not a list"));
  }
  for (const nlohmann::json& name : list) {
    if (!name.is_string() || name.get<std::string>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".", field, ": names must be strings"));
    }
    names.push_back(name.get<std::string>());
  }
  return names;
}

}  // namespace

std::string Describe(const AclBinding& binding) {
  const char* resource = "topic";
  if (binding.resource == AclBinding::Resource::kGroup) resource = "group";
  if (binding.resource == AclBinding::Resource::kTransactionalId) resource = "transactional id";
  return absl::StrCat(binding.principal, " may ",
                      binding.operation == AclBinding::Operation::kRead ? "read" : "write", " ",
                      resource, binding.prefixed ? "s starting with " : " ", binding.name);
}

absl::StatusOr<std::vector<AclBinding>> AclsFromDeclaration(const std::string& json_text,
                                                            const AccessPlan& plan) {
  absl::StatusOr<nlohmann::json> declaration = Parse(json_text);
  if (!declaration.ok()) return declaration.status();
  const nlohmann::json access = declaration->value("access", nlohmann::json::object());
  const nlohmann::json kinds = declaration->value("per_service", nlohmann::json::object());
  const nlohmann::json services = declaration->value("services", nlohmann::json::array());
  const nlohmann::json service_access = access.value("services", nlohmann::json::object());
  const nlohmann::json readers = access.value("readers", nlohmann::json::object());
  const nlohmann::json shared = declaration->value("shared", nlohmann::json::object());

  std::vector<AclBinding> acls;
  auto principal_of = [&](const std::string& name) {
    auto found = plan.principals.find(name);
    return found != plan.principals.end() ? found->second : absl::StrCat("User:", name);
  };
  auto allow = [&](const std::string& principal, AclBinding::Resource resource,
                   const std::string& name, bool prefixed, AclBinding::Operation operation) {
    acls.push_back({principal, resource, name, prefixed, operation});
  };
  using Op = AclBinding::Operation;
  using Resource = AclBinding::Resource;

  for (const nlohmann::json& service_name : services) {
    if (!service_name.is_string()) {
      return absl::InvalidArgumentError("topic declaration: service names must be strings");
    }
    const std::string service = service_name.get<std::string>();
    const nlohmann::json entry = service_access.value(service, nlohmann::json::object());
    const std::string where = absl::StrCat("access.services.", service);
    absl::StatusOr<std::vector<std::string>> reads = Names(entry, "reads", where);
    if (!reads.ok()) return reads.status();
    absl::StatusOr<std::vector<std::string>> writes = Names(entry, "writes", where);
    if (!writes.ok()) return writes.status();
    for (const std::string& topic : *writes) {
      if (!shared.contains(topic)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".writes: ", topic, " is not a shared topic (another service's topics are its own)"));
      }
    }

    const std::string principal = principal_of(service);
    std::vector<std::string> own;
    for (const auto& [kind, unused] : kinds.items()) own.push_back(ServiceTopic(service, kind));
    own.insert(own.end(), writes->begin(), writes->end());
    for (const std::string& topic : own) {
      allow(principal, Resource::kTopic, plan.name_prefix + topic, false, Op::kWrite);
      allow(principal, Resource::kTopic, plan.name_prefix + topic, false, Op::kRead);
    }
    for (const std::string& topic : *reads) {
      allow(principal, Resource::kTopic, plan.name_prefix + topic, false, Op::kRead);
    }
    allow(principal, Resource::kTopic, plan.name_prefix + kDeadLetterTopic, false, Op::kWrite);
    // "<service>-processor", "<service>.reactions" ...; transactional ids
    // "<service>-processor-<replica>". With the separator, so that no service
    // name that starts with another's reaches its groups.
    allow(principal, Resource::kGroup, plan.name_prefix + service + "-", true, Op::kRead);
    allow(principal, Resource::kGroup, plan.name_prefix + service + ".", true, Op::kRead);
    allow(principal, Resource::kGroup, kUnusedGroup, false, Op::kRead);
    allow(principal, Resource::kTransactionalId, plan.name_prefix + service + "-processor-", true,
          Op::kWrite);
  }
  for (const auto& [name, unused] : plan.principals) {
    if (std::find(services.begin(), services.end(), name) == services.end() && !readers.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("principal for ", name, ": not a declared service or reader"));
    }
  }
  for (const auto& [service, unused] : service_access.items()) {
    if (std::find(services.begin(), services.end(), service) == services.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("access.services.", service, ": not a declared service"));
    }
  }

  for (const auto& [reader, entry] : readers.items()) {
    const std::string where = absl::StrCat("access.readers.", reader);
    if (!entry.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
    absl::StatusOr<std::vector<std::string>> reads = Names(entry, "reads", where);
    if (!reads.ok()) return reads.status();
    const nlohmann::json group_prefix = entry.value("group_prefix", nlohmann::json());
    if (!group_prefix.is_string() || group_prefix.get<std::string>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".group_prefix: a name is required"));
    }
    for (const nlohmann::json& service : services) {
      if (absl::StartsWith(group_prefix.get<std::string>(), service.get<std::string>())) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".group_prefix: starts with the service name ", service.get<std::string>(),
            " (the reader could move that service's offsets)"));
      }
    }
    const std::string principal = principal_of(reader);
    for (const std::string& topic : *reads) {
      allow(principal, Resource::kTopic, plan.name_prefix + topic, false, Op::kRead);
    }
    allow(principal, Resource::kGroup, group_prefix.get<std::string>(), true, Op::kRead);
    allow(principal, Resource::kGroup, kUnusedGroup, false, Op::kRead);
  }
  return acls;
}

}  // namespace helpline::kafka
