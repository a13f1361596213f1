#include "services/runtime/eventsourcing/service_host.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/runtime/server/log.h"

namespace helpline::es {
namespace {

SystemClock ClockOrExit(const server::Config& config) {
  absl::StatusOr<SystemClock> clock = ClockFromConfig(config);
  if (!clock.ok()) {
    log::Error("cannot start: clock", {{"error", clock.status().ToString()}});
    std::exit(2);
  }
  return *clock;
}

std::unique_ptr<kafka::SharedClients> KafkaOrExit(const kafka::ClientConfig& client) {
  absl::StatusOr<std::unique_ptr<kafka::SharedClients>> clients = kafka::SharedClients::Create(client);
  if (!clients.ok()) {
    log::Error("cannot start: kafka", {{"error", clients.status().ToString()}});
    std::exit(2);
  }
  log::Info("kafka clients", {{"librdkafka", kafka::LibraryVersion()}});
  return *std::move(clients);
}

// The configured name, or one stable across restarts on this host: its
// name and the gRPC port (two replicas on one host cannot share a port).
std::string ReplicaName(const server::Config& config) {
  if (!config.GetString("processor.replica").empty()) return config.GetString("processor.replica");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string& listen = config.GetString("grpc.listen");
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(listen.rfind(':') + 1), &port) || port == 0) {
    return absl::StrCat(host, "-pid", getpid());
  }
  return absl::StrCat(host, "-", port);
}

ProcessorOptions ProcessorOptionsFor(const std::string& service, const std::string& prefix,
                                     const ServiceTopics& topics, const server::Config& config,
                                     double clock_rate) {
  ProcessorOptions options;
  options.service = prefix + service;
  options.replica = ReplicaName(config);
  options.topics = topics;
  options.clock_rate = clock_rate;
  return options;
}

}  // namespace

void AddProcessorKeys(server::ConfigSchema& schema) {
  schema.String("processor.replica", "",
                "names this replica's transactional producer, stably across its restarts (the "
                "pod's name); two replicas running at once must not share it. Empty: the host's "
                "name and the gRPC port");
}

ServiceHost::ServiceHost(const std::string& service, const server::Config& config,
                         const AggregateType& type)
    : client(kafka::ClientConfigFromConfig(config)),
      clock(ClockOrExit(config)),
      prefix(config.GetString("topics.prefix")),
      topics(ServiceTopics::For(service, prefix)),
      kafka(KafkaOrExit(client)),
      server(server::ServerOptionsFromConfig(service, config)),
      processor_metrics(server.metrics().registry()),
      processor(client, ProcessorOptionsFor(service, prefix, topics, config, clock.rate()), type,
                clock, &processor_metrics),
      closed_accounts(*kafka, prefix, service, topics.deadletter) {
  // The shared producer writes commands, reactions and dead letters; after a
  // fatal error (its id refused, idempotence broken) it writes nothing again.
  server.AliveWhile([this] { return kafka->producer->FatalError().ok(); });
}

}  // namespace helpline::es
