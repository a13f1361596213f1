#include "services/runtime/kafka/topics.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace helpline::kafka {
namespace {

absl::StatusOr<std::map<std::string, std::string>> ReadConfigs(const nlohmann::json& entry,
                                                               const std::string& where) {
  std::map<std::string, std::string> configs;
  if (!entry.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
  if (!entry.contains("configs")) return configs;
  if (!entry["configs"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".configs: not an object"));
  }
  for (const auto& [name, value] : entry["configs"].items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".configs.", name, ": must be a string, as Kafka takes it"));
    }
    configs[name] = value.get<std::string>();
  }
  return configs;
}

}  // namespace

std::string ServiceTopic(const std::string& service, const std::string& kind) {
  return absl::StrCat("helpline.", service, ".", kind);
}

absl::StatusOr<std::vector<TopicSpec>> TopicsFromDeclaration(const std::string& json_text,
                                                             const TopicPlan& plan) {
  nlohmann::json declaration = nlohmann::json::parse(json_text, nullptr, false);
  if (declaration.is_discarded() || !declaration.is_object()) {
    return absl::InvalidArgumentError("topic declaration: not a JSON object");
  }
  if (plan.partitions < 1 || plan.replication_factor < 1) {
    return absl::InvalidArgumentError("partitions and replication factor must be at least 1");
  }
  auto make = [&](const std::string& name, std::map<std::string, std::string> configs) {
    for (const auto& [key, value] : plan.extra_configs) configs[key] = value;
    return TopicSpec{plan.name_prefix + name, plan.partitions, plan.replication_factor,
                     std::move(configs)};
  };

  std::vector<TopicSpec> topics;
  const nlohmann::json services = declaration.value("services", nlohmann::json::array());
  const nlohmann::json kinds = declaration.value("per_service", nlohmann::json::object());
  if (!services.is_array() || !kinds.is_object()) {
    return absl::InvalidArgumentError(
        "topic declaration: 'services' must be a list and 'per_service' an object");
  }
  for (const nlohmann::json& service : services) {
    if (!service.is_string() || service.get<std::string>().empty()) {
      return absl::InvalidArgumentError("topic declaration: service names must be strings");
    }
    for (const auto& [kind, entry] : kinds.items()) {
      absl::StatusOr<std::map<std::string, std::string>> configs =
          ReadConfigs(entry, absl::StrCat("per_service.", kind));
      if (!configs.ok()) return configs.status();
      topics.push_back(make(ServiceTopic(service.get<std::string>(), kind), *std::move(configs)));
    }
  }
  const nlohmann::json shared = declaration.value("shared", nlohmann::json::object());
  for (const auto& [name, entry] : shared.items()) {
    absl::StatusOr<std::map<std::string, std::string>> configs =
        ReadConfigs(entry, absl::StrCat("shared.", name));
    if (!configs.ok()) return configs.status();
    topics.push_back(make(name, *std::move(configs)));
  }
  return topics;
}

}  // namespace helpline::kafka
