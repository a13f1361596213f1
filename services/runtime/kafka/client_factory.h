#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/producer.h"

namespace helpline::kafka {

// Opens consumers and producers of one cluster. The processor opens every
// client through one, so that its unit tests can hand it an in-memory
// cluster (kafka::testing::FakeKafka) instead of a real one. A producer's
// SendOffsetsToTransaction takes only a consumer of the same factory.
class ClientFactory {
 public:
  virtual ~ClientFactory() = default;
  virtual absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) = 0;
  virtual absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) = 0;
};

// The clients of the real cluster `client` names (librdkafka).
std::shared_ptr<ClientFactory> RdKafkaClients(ClientConfig client);

}  // namespace helpline::kafka
