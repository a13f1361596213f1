#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace helpline::server {

// The keys a binary accepts, with their types, defaults and limits. A config
// is read from defaults, then a JSON file (nested objects or dotted keys),
// then environment variables `HELPLINE_<KEY>` (dots become underscores,
// upper case). An unknown key, in the file or as a HELPLINE_ variable, and a
// value of the wrong type or out of range stop the start with a message that
// names it.
class ConfigSchema {
 public:
  enum class Type { kString, kInt, kBool, kDouble, kDuration };

  struct Key {
    std::string name;
    Type type = Type::kString;
    std::string help;
    std::optional<nlohmann::json> default_value;  // absent: required
    std::optional<double> min, max;               // kInt, kDouble
    std::optional<absl::Duration> min_duration, max_duration;
    std::vector<std::string> allowed;  // kString: one of these
    bool secret = false;               // never printed
  };

  ConfigSchema& String(std::string name, std::optional<std::string> default_value,
                       std::string help);
  ConfigSchema& OneOf(std::string name, std::string default_value,
                      std::vector<std::string> allowed, std::string help);
  ConfigSchema& Secret(std::string name, std::string help);  // optional, default ""
  ConfigSchema& Int(std::string name, int64_t default_value, int64_t min, int64_t max,
                    std::string help);
  ConfigSchema& Double(std::string name, double default_value, double min, double max,
                       std::string help);
  ConfigSchema& Bool(std::string name, bool default_value, std::string help);
  ConfigSchema& Duration(std::string name, absl::Duration default_value, absl::Duration min,
                         absl::Duration max, std::string help);

  const Key* Find(const std::string& name) const;
  const std::map<std::string, Key>& keys() const { return keys_; }

  // "kafka.bootstrap_servers" -> "HELPLINE_KAFKA_BOOTSTRAP_SERVERS".
  static std::string EnvironmentName(const std::string& key);

 private:
  Key& Add(std::string name, Type type, std::string help);
  std::map<std::string, Key> keys_;
};

// A loaded, validated config. Reading a key the schema does not declare, or
// with the wrong type, is a programming error and aborts.
class Config {
 public:
  const std::string& GetString(const std::string& key) const;
  int64_t GetInt(const std::string& key) const;
  double GetDouble(const std::string& key) const;
  bool GetBool(const std::string& key) const;
  absl::Duration GetDuration(const std::string& key) const;

  // Every key with its value (secrets shown as "<set>" or ""), for the start-up log.
  nlohmann::json Describe() const;

 private:
  friend absl::StatusOr<Config> LoadConfig(const ConfigSchema&, const std::optional<std::string>&,
                                           const std::map<std::string, std::string>&);
  const nlohmann::json& Get(const std::string& key, ConfigSchema::Type type) const;

  ConfigSchema schema_;
  std::map<std::string, nlohmann::json> values_;
};

// `file_contents` is the JSON text of the config file, if there is one.
// `environment` holds the process environment (name -> value).
absl::StatusOr<Config> LoadConfig(const ConfigSchema& schema,
                                  const std::optional<std::string>& file_contents,
                                  const std::map<std::string, std::string>& environment);

// For main(): reads `--config <file>` (or HELPLINE_CONFIG) and the environment;
// `--help` prints the keys. On any error prints it to stderr and exits with 2.
Config LoadConfigOrExit(const ConfigSchema& schema, int argc, char** argv);

}  // namespace helpline::server
