#include "services/runtime/eventsourcing/service_host.h"

#include <cstdlib>

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

ProcessorOptions ProcessorOptionsFor(const std::string& service, const std::string& prefix,
                                     const ServiceTopics& topics, double clock_rate) {
  ProcessorOptions options;
  options.service = prefix + service;
  options.topics = topics;
  options.clock_rate = clock_rate;
  return options;
}

}  // namespace

ServiceHost::ServiceHost(const std::string& service, const server::Config& config,
                         const AggregateType& type)
    : client(kafka::ClientConfigFromConfig(config)),
      clock(ClockOrExit(config)),
      prefix(config.GetString("topics.prefix")),
      topics(ServiceTopics::For(service, prefix)),
      server(server::ServerOptionsFromConfig(service, config)),
      processor_metrics(server.metrics().registry()),
      processor(client, ProcessorOptionsFor(service, prefix, topics, clock.rate()), type, clock,
                &processor_metrics) {}

}  // namespace helpline::es
