#include "services/runtime/kafka/rdkafka_producer.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/runtime/kafka/rdkafka_consumer.h"

namespace helpline::kafka {
namespace {

// Not STALE_MEMBER_EPOCH or ILLEGAL_GENERATION: those come from a member
// whose epoch or generation moved on (another member joined or left) and
// whose next attempt carries the new one.
bool IsLostMembershipCode(RdKafka::ErrorCode code) {
  return code == RdKafka::ERR_UNKNOWN_MEMBER_ID || code == RdKafka::ERR_FENCED_MEMBER_EPOCH ||
         code == RdKafka::ERR_FENCED_INSTANCE_ID;
}

bool IsFencingCode(RdKafka::ErrorCode code) {
  return code == RdKafka::ERR__FENCED || code == RdKafka::ERR_PRODUCER_FENCED ||
         code == RdKafka::ERR_INVALID_PRODUCER_EPOCH;
}

absl::Status Fatal(RdKafka::ErrorCode code, const std::string& message) {
  if (IsFencingCode(code)) return FencedError(message);
  return absl::FailedPreconditionError(absl::StrCat("fatal: ", message));
}

absl::Status FromTransactionError(RdKafka::Error* raw, const char* operation) {
  if (raw == nullptr) return absl::OkStatus();
  std::unique_ptr<RdKafka::Error> error(raw);
  std::string message = absl::StrCat(operation, ": ", error->name(), ": ", error->str());
  if (error->is_fatal()) return Fatal(error->code(), message);
  if (error->txn_requires_abort()) {
    if (IsLostMembershipCode(error->code())) return LostGroupMembershipError(message);
    return absl::AbortedError(message);
  }
  if (error->is_retriable()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

}  // namespace

class RdKafkaProducer::DeliveryReporter : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    std::unique_ptr<DeliveryCallback> callback(static_cast<DeliveryCallback*>(message.msg_opaque()));
    if (callback == nullptr) return;
    Delivery delivery;
    delivery.topic = message.topic_name();
    delivery.partition = message.partition();
    delivery.offset = message.offset();
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      delivery.status = absl::UnavailableError(
          absl::StrCat("delivery to ", delivery.topic, " failed: ", message.errstr()));
    }
    (*callback)(delivery);
  }
};

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(const ClientConfig& client,
                                                           const ProducerOptions& options) {
  absl::StatusOr<std::unique_ptr<RdKafkaProducer>> producer =
      RdKafkaProducer::Create(client, options);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<Producer>(*std::move(producer));
}

absl::StatusOr<std::unique_ptr<RdKafkaProducer>> RdKafkaProducer::Create(
    const ClientConfig& client, const ProducerOptions& options) {
  std::map<std::string, std::string> properties = {
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"partitioner", "murmur2_random"},
      {"linger.ms", std::to_string(internal::ToMillis(options.linger))},
      {"message.timeout.ms", std::to_string(internal::ToMillis(options.delivery_timeout))},
  };
  if (!options.transactional_id.empty()) {
    properties["transactional.id"] = options.transactional_id;
    properties["transaction.timeout.ms"] =
        std::to_string(internal::ToMillis(options.transaction_timeout));
    if (options.delivery_timeout > options.transaction_timeout) {
      properties["message.timeout.ms"] = properties["transaction.timeout.ms"];
    }
  }
  for (const auto& [name, value] : options.overrides) properties[name] = value;

  std::unique_ptr<RdKafkaProducer> producer(new RdKafkaProducer());
  producer->reporter_ = std::make_unique<DeliveryReporter>();
  std::unique_ptr<RdKafka::Conf> conf = internal::NewGlobalConf();
  if (absl::Status status = internal::BuildConf(client, properties, conf.get()); !status.ok()) {
    return status;
  }
  std::string error;
  conf->set("dr_cb", producer->reporter_.get(), error);
  producer->producer_.reset(RdKafka::Producer::create(conf.get(), error));
  if (producer->producer_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a Kafka producer: ", error));
  }
  // A transactional producer's callbacks run inside Flush and the
  // transaction calls instead: a second thread polling the same queue would
  // take the delivery reports those calls wait for, and they would only
  // notice on their next 10 ms tick.
  // (A transactional producer that loses every broker fails its
  // transaction and is replaced; this one lives as long as the process.)
  if (options.transactional_id.empty()) {
    producer->broker_watch_ = std::make_unique<internal::BrokerWatch>(client.bootstrap_servers);
    RdKafkaProducer* self = producer.get();
    producer->poller_ = std::thread([self] {
      while (!self->stopping_.load()) {
        self->producer_->poll(50);
        self->broker_watch_->Check(*self->producer_);
      }
    });
  }
  return producer;
}

RdKafkaProducer::~RdKafkaProducer() {
  if (producer_ != nullptr) producer_->flush(internal::ToMillis(absl::Seconds(5)));
  stopping_.store(true);
  if (poller_.joinable()) poller_.join();
  warm_topics_.clear();
  producer_.reset();
}

absl::Status RdKafkaProducer::Produce(const OutgoingRecord& record, DeliveryCallback on_delivery) {
  RdKafka::Headers* headers = nullptr;
  if (!record.headers.empty()) {
    headers = RdKafka::Headers::create();
    for (const Header& header : record.headers) {
      headers->add(header.key, header.value.data(), header.value.size());
    }
  }
  auto* callback = new DeliveryCallback(std::move(on_delivery));
  for (;;) {
    RdKafka::ErrorCode code = producer_->produce(
        record.topic, record.partition.value_or(RdKafka::Topic::PARTITION_UA),
        RdKafka::Producer::RK_MSG_COPY,
        record.tombstone ? nullptr : const_cast<char*>(record.value.data()),
        record.tombstone ? 0 : record.value.size(), record.key.data(), record.key.size(),
        /*timestamp=*/0, headers,
        callback);
    if (code == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
    if (code == RdKafka::ERR__QUEUE_FULL) {
      producer_->poll(10);  // the local queue drains as deliveries complete
      continue;
    }
    delete callback;
    delete headers;
    std::string message = absl::StrCat("cannot produce to ", record.topic, ": ",
                                       RdKafka::err2str(code));
    if (code == RdKafka::ERR__FATAL) return FatalError();
    if (code == RdKafka::ERR__STATE) return absl::InternalError(message);  // e.g. no transaction begun
    return absl::InvalidArgumentError(message);
  }
}

Delivery RdKafkaProducer::ProduceAndWait(const OutgoingRecord& record) {
  auto promise = std::make_shared<std::promise<Delivery>>();
  std::future<Delivery> future = promise->get_future();
  absl::Status queued =
      Produce(record, [promise](const Delivery& delivery) { promise->set_value(delivery); });
  if (!queued.ok()) {
    Delivery failed;
    failed.status = queued;
    failed.topic = record.topic;
    return failed;
  }
  while (future.wait_for(std::chrono::milliseconds(poller_.joinable() ? 50 : 0)) !=
         std::future_status::ready) {
    if (!poller_.joinable()) producer_->poll(5);  // nobody else serves the callbacks
  }
  return future.get();
}

absl::Status RdKafkaProducer::Flush(absl::Duration timeout) {
  RdKafka::ErrorCode code = producer_->flush(internal::ToMillis(timeout));
  if (code == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
  return absl::DeadlineExceededError(
      absl::StrCat("flush: ", producer_->outq_len(), " records still in flight"));
}

absl::Status RdKafkaProducer::WarmUp(const std::vector<std::string>& topics, absl::Duration timeout) {
  for (const std::string& name : topics) {
    std::string error;
    std::unique_ptr<RdKafka::Topic> topic(
        RdKafka::Topic::create(producer_.get(), name, nullptr, error));
    if (topic == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, ": ", error));
    RdKafka::Metadata* raw = nullptr;
    RdKafka::ErrorCode code =
        producer_->metadata(/*all_topics=*/false, topic.get(), &raw, internal::ToMillis(timeout));
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    if (code != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("metadata of ", name, ": ", RdKafka::err2str(code)));
    }
    warm_topics_.push_back(std::move(topic));
  }
  return absl::OkStatus();
}

absl::Status RdKafkaProducer::FatalError() const {
  std::string reason;
  RdKafka::ErrorCode code = producer_->fatal_error(reason);
  if (code == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
  return Fatal(code, absl::StrCat(RdKafka::err2str(code), ": ", reason));
}

absl::Status RdKafkaProducer::InitTransactions(absl::Duration timeout) {
  return FromTransactionError(producer_->init_transactions(internal::ToMillis(timeout)),
                              "init_transactions");
}

absl::Status RdKafkaProducer::BeginTransaction() {
  return FromTransactionError(producer_->begin_transaction(), "begin_transaction");
}

absl::Status RdKafkaProducer::SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                                Consumer& consumer, absl::Duration timeout) {
  std::vector<RdKafka::TopicPartition*> partitions;
  for (const TopicPartitionOffset& offset : offsets) {
    partitions.push_back(
        RdKafka::TopicPartition::create(offset.topic, offset.partition, offset.offset));
  }
  auto* native = dynamic_cast<RdKafkaConsumer*>(&consumer);
  if (native == nullptr) {
    RdKafka::TopicPartition::destroy(partitions);
    return absl::InvalidArgumentError("send_offsets_to_transaction: not a librdkafka consumer");
  }
  std::unique_ptr<RdKafka::ConsumerGroupMetadata> group(native->native()->groupMetadata());
  absl::Status status = FromTransactionError(
      producer_->send_offsets_to_transaction(partitions, group.get(), internal::ToMillis(timeout)),
      "send_offsets_to_transaction");
  RdKafka::TopicPartition::destroy(partitions);
  return status;
}

absl::Status RdKafkaProducer::CommitTransaction(absl::Duration timeout) {
  return FromTransactionError(producer_->commit_transaction(internal::ToMillis(timeout)),
                              "commit_transaction");
}

absl::Status RdKafkaProducer::AbortTransaction(absl::Duration timeout) {
  return FromTransactionError(producer_->abort_transaction(internal::ToMillis(timeout)),
                              "abort_transaction");
}

}  // namespace helpline::kafka
