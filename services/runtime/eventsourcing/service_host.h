#pragma once

#include <memory>
#include <string>

#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/closed_accounts.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/processor_metrics.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/kafka/shared_clients.h"
#include "services/runtime/server/config.h"
#include "services/runtime/server/server.h"

namespace helpline::es {

// Adds processor.* keys (the replica's name) to a service's schema.
void AddProcessorKeys(server::ConfigSchema& schema);

// What every event-sourced service's main builds the same way from its
// config: the Kafka clients the process shares, the clock, its topics (with
// "topics.prefix"), the gRPC server with its metrics, and the processor of
// its aggregate type. A bad clock or Kafka config ends the process
// (status 2) with a log line.
class ServiceHost {
 public:
  ServiceHost(const std::string& service, const server::Config& config, const AggregateType& type);

  const kafka::ClientConfig client;
  const SystemClock clock;
  // Real time, whatever clock.rate says: what tokens other parties verify carry.
  const SystemClock wall_clock;
  // Prepended to every topic and consumer group name (tests).
  const std::string prefix;
  const ServiceTopics topics;
  // The producer and reader every feed, front and reactor of the process uses.
  const std::unique_ptr<kafka::SharedClients> kafka;
  server::GrpcServer server;
  ProcessorMetrics processor_metrics;
  Processor processor;
  // Accounts identity deleted: the mains start it, serve once it has caught
  // up, and have their call guard refuse those accounts' tokens.
  ClosedAccounts closed_accounts;
};

}  // namespace helpline::es
