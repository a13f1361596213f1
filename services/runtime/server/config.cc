#include "services/runtime/server/config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

extern char** environ;

namespace helpline::server {
namespace {

constexpr char kEnvironmentPrefix[] = "HELPLINE_";
constexpr char kConfigFileVariable[] = "HELPLINE_CONFIG";

const char* TypeName(ConfigSchema::Type type) {
  switch (type) {
    case ConfigSchema::Type::kString: return "a string";
    case ConfigSchema::Type::kInt: return "an integer";
    case ConfigSchema::Type::kBool: return "a boolean";
    case ConfigSchema::Type::kDouble: return "a number";
    case ConfigSchema::Type::kDuration: return "a duration such as \"250ms\", \"30s\" or \"72h\"";
  }
  return "?";
}

// Flattens {"kafka": {"bootstrap_servers": "x"}} into {"kafka.bootstrap_servers": "x"}.
void Flatten(const nlohmann::json& node, const std::string& prefix,
             std::map<std::string, nlohmann::json>* out) {
  for (const auto& [name, value] : node.items()) {
    std::string key = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
    if (value.is_object()) {
      Flatten(value, key, out);
    } else {
      (*out)[key] = value;
    }
  }
}

// Converts a raw value (from JSON, or a string from the environment) to the
// key's type and checks its limits. Returns the normalised JSON value.
absl::StatusOr<nlohmann::json> Coerce(const ConfigSchema::Key& key, const nlohmann::json& raw,
                                      const std::string& source) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("config key '", key.name, "' (from ", source, "): ", why));
  };
  const bool is_text = raw.is_string();
  const std::string text = is_text ? raw.get<std::string>() : std::string();
  switch (key.type) {
    case ConfigSchema::Type::kString: {
      if (!is_text) return bad("must be a string");
      if (!key.allowed.empty() &&
          std::find(key.allowed.begin(), key.allowed.end(), text) == key.allowed.end()) {
        return bad(absl::StrCat("'", text, "' is not one of: ", absl::StrJoin(key.allowed, ", ")));
      }
      return nlohmann::json(text);
    }
    case ConfigSchema::Type::kInt: {
      int64_t value = 0;
      if (raw.is_number_integer()) {
        value = raw.get<int64_t>();
      } else if (!is_text || !absl::SimpleAtoi(text, &value)) {
        return bad(absl::StrCat("must be ", TypeName(key.type), ", got ", raw.dump()));
      }
      if (value < *key.min || value > *key.max) {
        return bad(absl::StrCat(value, " is outside [", static_cast<int64_t>(*key.min), ", ",
                                static_cast<int64_t>(*key.max), "]"));
      }
      return nlohmann::json(value);
    }
    case ConfigSchema::Type::kDouble: {
      double value = 0;
      if (raw.is_number()) {
        value = raw.get<double>();
      } else if (!is_text || !absl::SimpleAtod(text, &value)) {
        return bad(absl::StrCat("must be ", TypeName(key.type), ", got ", raw.dump()));
      }
      if (!(value >= *key.min && value <= *key.max)) {
        return bad(absl::StrCat(value, " is outside [", *key.min, ", ", *key.max, "]"));
      }
      return nlohmann::json(value);
    }
    case ConfigSchema::Type::kBool: {
      if (raw.is_boolean()) return raw;
      if (is_text) {
        std::string lower = absl::AsciiStrToLower(text);
        if (lower == "true" || lower == "1") return nlohmann::json(true);
        if (lower == "false" || lower == "0") return nlohmann::json(false);
      }
      return bad(absl::StrCat("must be true or false, got ", raw.dump()));
    }
    case ConfigSchema::Type::kDuration: {
      absl::Duration value;
      if (!is_text || !absl::ParseDuration(text, &value)) {
        return bad(absl::StrCat("must be ", TypeName(key.type), ", got ", raw.dump()));
      }
      if (value < *key.min_duration || value > *key.max_duration) {
        return bad(absl::StrCat(text, " is outside [", absl::FormatDuration(*key.min_duration),
                                ", ", absl::FormatDuration(*key.max_duration), "]"));
      }
      return nlohmann::json(absl::FormatDuration(value));
    }
  }
  return bad("unknown type");
}

}  // namespace

ConfigSchema::Key& ConfigSchema::Add(std::string name, Type type, std::string help) {
  Key& key = keys_[name];
  key.name = std::move(name);
  key.type = type;
  key.help = std::move(help);
  return key;
}

ConfigSchema& ConfigSchema::String(std::string name, std::optional<std::string> default_value,
                                   std::string help) {
  Key& key = Add(std::move(name), Type::kString, std::move(help));
  if (default_value) key.default_value = *default_value;
  return *this;
}

ConfigSchema& ConfigSchema::OneOf(std::string name, std::string default_value,
                                  std::vector<std::string> allowed, std::string help) {
  Key& key = Add(std::move(name), Type::kString, std::move(help));
  key.default_value = std::move(default_value);
  key.allowed = std::move(allowed);
  return *this;
}

ConfigSchema& ConfigSchema::Secret(std::string name, std::string help) {
  Key& key = Add(std::move(name), Type::kString, std::move(help));
  key.default_value = "";
  key.secret = true;
  return *this;
}

ConfigSchema& ConfigSchema::Int(std::string name, int64_t default_value, int64_t min, int64_t max,
                                std::string help) {
  Key& key = Add(std::move(name), Type::kInt, std::move(help));
  key.default_value = default_value;
  key.min = static_cast<double>(min);
  key.max = static_cast<double>(max);
  return *this;
}

ConfigSchema& ConfigSchema::Double(std::string name, double default_value, double min, double max,
                                   std::string help) {
  Key& key = Add(std::move(name), Type::kDouble, std::move(help));
  key.default_value = default_value;
  key.min = min;
  key.max = max;
  return *this;
}

ConfigSchema& ConfigSchema::Bool(std::string name, bool default_value, std::string help) {
  Key& key = Add(std::move(name), Type::kBool, std::move(help));
  key.default_value = default_value;
  return *this;
}

ConfigSchema& ConfigSchema::Duration(std::string name, absl::Duration default_value,
                                     absl::Duration min, absl::Duration max, std::string help) {
  Key& key = Add(std::move(name), Type::kDuration, std::move(help));
  key.default_value = absl::FormatDuration(default_value);
  key.min_duration = min;
  key.max_duration = max;
  return *this;
}

const ConfigSchema::Key* ConfigSchema::Find(const std::string& name) const {
  auto it = keys_.find(name);
  return it == keys_.end() ? nullptr : &it->second;
}

std::string ConfigSchema::EnvironmentName(const std::string& key) {
  return absl::StrCat(kEnvironmentPrefix,
                      absl::AsciiStrToUpper(absl::StrReplaceAll(key, {{".", "_"}})));
}

const nlohmann::json& Config::Get(const std::string& key, ConfigSchema::Type type) const {
  const ConfigSchema::Key* declared = schema_.Find(key);
  if (declared == nullptr || declared->type != type) {
    std::cerr << "internal error: config key '" << key << "' read as " << TypeName(type)
              << " but declared " << (declared ? TypeName(declared->type) : "nowhere") << "\n";
    std::abort();
  }
  return values_.at(key);
}

const std::string& Config::GetString(const std::string& key) const {
  return Get(key, ConfigSchema::Type::kString).get_ref<const std::string&>();
}

int64_t Config::GetInt(const std::string& key) const {
  return Get(key, ConfigSchema::Type::kInt).get<int64_t>();
}

double Config::GetDouble(const std::string& key) const {
  return Get(key, ConfigSchema::Type::kDouble).get<double>();
}

bool Config::GetBool(const std::string& key) const {
  return Get(key, ConfigSchema::Type::kBool).get<bool>();
}

absl::Duration Config::GetDuration(const std::string& key) const {
  absl::Duration value;
  absl::ParseDuration(Get(key, ConfigSchema::Type::kDuration).get<std::string>(), &value);
  return value;
}

nlohmann::json Config::Describe() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : values_) {
    const ConfigSchema::Key* key = schema_.Find(name);
    if (key->secret) {
      out[name] = value.get<std::string>().empty() ? "" : "<set>";
    } else {
      out[name] = value;
    }
  }
  return out;
}

absl::StatusOr<Config> LoadConfig(const ConfigSchema& schema,
                                  const std::optional<std::string>& file_contents,
                                  const std::map<std::string, std::string>& environment) {
  Config config;
  config.schema_ = schema;
  for (const auto& [name, key] : schema.keys()) {
    if (key.default_value) config.values_[name] = *key.default_value;
  }

  if (file_contents) {
    nlohmann::json document = nlohmann::json::parse(*file_contents, nullptr, false);
    if (document.is_discarded() || !document.is_object()) {
      return absl::InvalidArgumentError("config file is not a JSON object");
    }
    std::map<std::string, nlohmann::json> flat;
    Flatten(document, "", &flat);
    for (const auto& [name, raw] : flat) {
      const ConfigSchema::Key* key = schema.Find(name);
      if (key == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("config file: unknown key '", name, "'"));
      }
      absl::StatusOr<nlohmann::json> value = Coerce(*key, raw, "config file");
      if (!value.ok()) return value.status();
      config.values_[name] = *std::move(value);
    }
  }

  std::map<std::string, const ConfigSchema::Key*> by_environment_name;
  for (const auto& [name, key] : schema.keys()) {
    by_environment_name[ConfigSchema::EnvironmentName(name)] = &key;
  }
  for (const auto& [variable, text] : environment) {
    if (variable.rfind(kEnvironmentPrefix, 0) != 0 || variable == kConfigFileVariable) continue;
    auto it = by_environment_name.find(variable);
    if (it == by_environment_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable ", variable, " names no config key (HELPLINE_* variables are "
          "config overrides; see --help for the keys)"));
    }
    absl::StatusOr<nlohmann::json> value = Coerce(*it->second, nlohmann::json(text), variable);
    if (!value.ok()) return value.status();
    config.values_[it->second->name] = *std::move(value);
  }

  for (const auto& [name, key] : schema.keys()) {
    if (!config.values_.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config key '", name, "' is required (", key.help, "); set it in the "
                       "config file or as ", ConfigSchema::EnvironmentName(name)));
    }
  }
  return config;
}

Config LoadConfigOrExit(const ConfigSchema& schema, int argc, char** argv) {
  std::optional<std::string> path;
  bool check_only = false;
  if (const char* from_environment = std::getenv(kConfigFileVariable)) path = from_environment;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << "Usage: " << argv[0] << " [--config FILE] [--check-config]\n\n"
                << "--check-config: validate the config (file and environment), then exit.\n\n"
                << "Config keys (file key, "
                << "environment override, default):\n";
      for (const auto& [name, key] : schema.keys()) {
        std::cout << "  " << name << "  " << ConfigSchema::EnvironmentName(name) << "  "
                  << (key.default_value ? key.default_value->dump() : "(required)") << "\n      "
                  << key.help << "\n";
      }
      std::exit(0);
    } else if (arg == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
    } else {
      std::cerr << argv[0] << ": unknown argument '" << arg << "' (try --help)\n";
      std::exit(2);
    }
  }

  std::optional<std::string> contents;
  if (path && !path->empty()) {
    std::ifstream file(*path);
    if (!file) {
      std::cerr << argv[0] << ": cannot read config file " << *path << "\n";
      std::exit(2);
    }
    std::stringstream buffer;
    buffer << file.rdbuf();
    contents = buffer.str();
  }

  std::map<std::string, std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string pair = *entry;
    size_t equals = pair.find('=');
    if (equals != std::string::npos) environment[pair.substr(0, equals)] = pair.substr(equals + 1);
  }

  absl::StatusOr<Config> config = LoadConfig(schema, contents, environment);
  if (!config.ok()) {
    std::cerr << argv[0] << ": bad config: " << config.status().message() << "\n";
    std::exit(2);
  }
  if (check_only) {
    std::cout << argv[0] << ": config ok\n";
    std::exit(0);
  }
  return *std::move(config);
}

}  // namespace helpline::server
