#include "services/runtime/kafka/client_factory.h"

#include <utility>

namespace helpline::kafka {
namespace {

class RdKafkaClientFactory : public ClientFactory {
 public:
  explicit RdKafkaClientFactory(ClientConfig client) : client_(std::move(client)) {}

  absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) override {
    return Consumer::Create(client_, options);
  }
  absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) override {
    return Producer::Create(client_, options);
  }

 private:
  const ClientConfig client_;
};

}  // namespace

std::shared_ptr<ClientFactory> RdKafkaClients(ClientConfig client) {
  return std::make_shared<RdKafkaClientFactory>(std::move(client));
}

}  // namespace helpline::kafka
