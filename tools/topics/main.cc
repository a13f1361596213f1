// helpline-topics: creates Helpline's Kafka topics from the declared list
// (deploy/topics.json) and, with --acls, the ACLs of its declared access,
// idempotently. Used by the local stack and by the Helm chart's
// pre-install/pre-upgrade hook.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/access.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/topics.h"

namespace {

constexpr char kUsage[] = R"(Usage: helpline-topics --bootstrap-servers HOST:PORT --file topics.json [options]

Creates every topic in the declared list that does not exist yet; a topic that
exists with another partition count is an error (exit 1).

Options:
  --partitions N            partitions per topic (default 12)
  --replication-factor N    replicas per partition (default 1; 3 in production)
  --config KEY=VALUE        a topic setting added to every topic (repeatable),
                            e.g. min.insync.replicas=2
  --prefix P                prepended to every name (tests)
  --property KEY=VALUE      a librdkafka client setting (repeatable), e.g.
                            security.protocol=sasl_ssl; the SASL password comes
                            from KAFKA_SASL_PASSWORD, never the command line
                            (any process on the machine can read that)
  --wait DURATION           how long to wait for the cluster (default 60s)
  --list                    print the topics that would be created, then exit
  --acls                    also allow each declared principal what the
                            declaration's "access" gives it (rules are only
                            added: one no longer declared stays until removed
                            by hand; needs a principal that may change ACLs)
  --principal NAME=USER     the cluster's principal of a declared one (repeatable),
                            e.g. identity=User:helpline-identity; default User:NAME
  --list-acls               print the ACLs --acls would create, then exit
)";

bool SplitPair(const std::string& text, std::pair<std::string, std::string>* out) {
  size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) return false;
  *out = {text.substr(0, equals), text.substr(equals + 1)};
  return true;
}

int Fail(const std::string& message) {
  std::cerr << "helpline-topics: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  helpline::kafka::ClientConfig client;
  helpline::kafka::TopicPlan plan;
  std::string file;
  absl::Duration wait = absl::Seconds(60);
  bool list_only = false;
  bool acls = false;
  bool list_acls = false;
  helpline::kafka::AccessPlan access;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "helpline-topics: " << arg << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    std::pair<std::string, std::string> pair;
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--bootstrap-servers") {
      client.bootstrap_servers = value();
    } else if (arg == "--file") {
      file = value();
    } else if (arg == "--partitions") {
      if (!absl::SimpleAtoi(value(), &plan.partitions)) return Fail("--partitions: not a number");
    } else if (arg == "--replication-factor") {
      if (!absl::SimpleAtoi(value(), &plan.replication_factor)) {
        return Fail("--replication-factor: not a number");
      }
    } else if (arg == "--config") {
      if (!SplitPair(value(), &pair)) return Fail("--config takes KEY=VALUE");
      plan.extra_configs[pair.first] = pair.second;
    } else if (arg == "--property") {
      if (!SplitPair(value(), &pair)) return Fail("--property takes KEY=VALUE");
      if (absl::StrContains(pair.first, "password") || absl::StrContains(pair.first, "secret")) {
        return Fail(absl::StrCat("--property ", pair.first,
                                 ": no secrets on the command line (the SASL password comes "
                                 "from KAFKA_SASL_PASSWORD)"));
      }
      client.properties[pair.first] = pair.second;
    } else if (arg == "--prefix") {
      plan.name_prefix = value();
    } else if (arg == "--wait") {
      if (!absl::ParseDuration(value(), &wait)) return Fail("--wait: not a duration (\"60s\")");
    } else if (arg == "--list") {
      list_only = true;
    } else if (arg == "--acls") {
      acls = true;
    } else if (arg == "--list-acls") {
      list_acls = true;
    } else if (arg == "--principal") {
      if (!SplitPair(value(), &pair)) return Fail("--principal takes NAME=USER");
      if (!absl::StartsWith(pair.second, "User:")) {
        return Fail(absl::StrCat("--principal ", pair.first, ": \"", pair.second,
                                 "\" is not a principal (User:<name>)"));
      }
      access.principals[pair.first] = pair.second;
    } else {
      std::cerr << "helpline-topics: unknown argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }
  if (const char* password = std::getenv("KAFKA_SASL_PASSWORD"); password && *password) {
    client.properties["sasl.password"] = password;
  }
  if (file.empty()) return Fail("--file is required");
  std::ifstream input(file);
  if (!input) return Fail("cannot read " + file);
  std::stringstream text;
  text << input.rdbuf();
  auto topics = helpline::kafka::TopicsFromDeclaration(text.str(), plan);
  if (!topics.ok()) return Fail(std::string(topics.status().message()));
  access.name_prefix = plan.name_prefix;
  auto bindings = helpline::kafka::AclsFromDeclaration(text.str(), access);
  if (!bindings.ok()) return Fail(std::string(bindings.status().message()));
  if (list_acls) {
    for (const auto& binding : *bindings) std::cout << helpline::kafka::Describe(binding) << "\n";
    return 0;
  }
  if (list_only) {
    for (const auto& topic : *topics) {
      std::cout << topic.name << " partitions=" << topic.partitions
                << " replication=" << topic.replication_factor;
      for (const auto& [key, v] : topic.configs) std::cout << " " << key << "=" << v;
      std::cout << "\n";
    }
    return 0;
  }
  if (client.bootstrap_servers.empty()) return Fail("--bootstrap-servers is required");

  auto admin = helpline::kafka::Admin::Create(client);
  if (!admin.ok()) return Fail(std::string(admin.status().message()));
  if (absl::Status reachable = (*admin)->WaitUntilReachable(wait); !reachable.ok()) {
    return Fail(std::string(reachable.message()));
  }
  auto created = (*admin)->CreateTopics(*topics, wait);
  if (!created.ok()) return Fail(std::string(created.status().message()));
  std::cout << "topics: " << created->size() << " created, "
            << topics->size() - created->size() << " already there\n";
  if (acls) {
    if (absl::Status allowed = (*admin)->CreateAcls(*bindings, wait); !allowed.ok()) {
      return Fail(std::string(allowed.message()));
    }
    std::cout << "acls: " << bindings->size() << " in place\n";
  }
  return 0;
}
