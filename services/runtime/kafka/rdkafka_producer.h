#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/kafka/producer.h"

namespace RdKafka {
class Producer;
class Topic;
}  // namespace RdKafka

namespace helpline::kafka {

// The Producer of a real cluster, through librdkafka.
class RdKafkaProducer final : public Producer {
 public:
  static absl::StatusOr<std::unique_ptr<RdKafkaProducer>> Create(const ClientConfig& client,
                                                                 const ProducerOptions& options);
  ~RdKafkaProducer() override;


  absl::Status Produce(const OutgoingRecord& record, DeliveryCallback on_delivery) override;
  Delivery ProduceAndWait(const OutgoingRecord& record) override;
  absl::Status Flush(absl::Duration timeout) override;
  absl::Status WarmUp(const std::vector<std::string>& topics, absl::Duration timeout) override;
  absl::Status FatalError() const override;
  absl::Status InitTransactions(absl::Duration timeout) override;
  absl::Status BeginTransaction() override;
  // `consumer` must be an RdKafkaConsumer.
  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        Consumer& consumer, absl::Duration timeout) override;
  absl::Status CommitTransaction(absl::Duration timeout) override;
  absl::Status AbortTransaction(absl::Duration timeout) override;

 private:
  class DeliveryReporter;
  RdKafkaProducer() = default;

  std::unique_ptr<DeliveryReporter> reporter_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::unique_ptr<internal::BrokerWatch> broker_watch_;
  std::vector<std::unique_ptr<RdKafka::Topic>> warm_topics_;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
};

}  // namespace helpline::kafka
