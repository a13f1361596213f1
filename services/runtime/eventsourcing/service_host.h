#pragma once

#include <string>

#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/processor_metrics.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/server/config.h"
#include "services/runtime/server/server.h"

namespace helpline::es {

// What every event-sourced service's main builds the same way from its
// config: the Kafka client, the clock, its topics (with "topics.prefix"),
// the gRPC server with its metrics, and the processor of its aggregate type.
// A bad clock config ends the process (status 2) with a log line.
class ServiceHost {
 public:
  ServiceHost(const std::string& service, const server::Config& config, const AggregateType& type);

  const kafka::ClientConfig client;
  const SystemClock clock;
  // Prepended to every topic and consumer group name (tests).
  const std::string prefix;
  const ServiceTopics topics;
  server::GrpcServer server;
  ProcessorMetrics processor_metrics;
  Processor processor;
};

}  // namespace helpline::es
