#include "services/runtime/kafka/rdkafka_consumer.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/runtime/server/log.h"

namespace helpline::kafka {
namespace {

std::vector<RdKafka::TopicPartition*> ToNative(const std::vector<TopicPartitionOffset>& list) {
  std::vector<RdKafka::TopicPartition*> out;
  for (const TopicPartitionOffset& item : list) {
    out.push_back(RdKafka::TopicPartition::create(item.topic, item.partition, item.offset));
  }
  return out;
}

}  // namespace

// Both group protocols we configure (consumer, classic with the
// cooperative-sticky assignor) are incremental: a rebalance names only the
// partitions that move.
class RdKafkaConsumer::RebalanceAdapter : public RdKafka::RebalanceCb {
 public:
  explicit RebalanceAdapter(std::function<void(const Rebalance&)> handler)
      : handler_(std::move(handler)) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode code,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    if (code != RdKafka::ERR__ASSIGN_PARTITIONS && code != RdKafka::ERR__REVOKE_PARTITIONS) {
      log::Warn("consumer group rebalance failed", {{"error", RdKafka::err2str(code)}});
      return;
    }
    Rebalance rebalance;
    rebalance.assigned = code == RdKafka::ERR__ASSIGN_PARTITIONS;
    rebalance.lost = !rebalance.assigned && consumer->assignment_lost();
    for (RdKafka::TopicPartition* partition : partitions) {
      rebalance.partitions.push_back({partition->topic(), partition->partition(), partition->offset()});
    }
    if (rebalance.assigned) {
      Check(consumer->incremental_assign(partitions), "incremental_assign");
      if (handler_) handler_(rebalance);
    } else {
      if (handler_) handler_(rebalance);
      Check(consumer->incremental_unassign(partitions), "incremental_unassign");
    }
  }

 private:
  static void Check(RdKafka::Error* raw, const char* operation) {
    std::unique_ptr<RdKafka::Error> error(raw);
    if (error != nullptr) log::Error(absl::StrCat(operation, " failed"), {{"error", error->str()}});
  }

  std::function<void(const Rebalance&)> handler_;
};

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(const ClientConfig& client,
                                                           const ConsumerOptions& options) {
  absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> consumer =
      RdKafkaConsumer::Create(client, options);
  if (!consumer.ok()) return consumer.status();
  return std::unique_ptr<Consumer>(*std::move(consumer));
}

absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> RdKafkaConsumer::Create(
    const ClientConfig& client, const ConsumerOptions& options) {
  std::map<std::string, std::string> properties = {
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"isolation.level", options.read_committed ? "read_committed" : "read_uncommitted"},
      {"auto.offset.reset", options.start_at_beginning ? "earliest" : "latest"},
      {"enable.partition.eof", "false"},
      {"fetch.wait.max.ms", std::to_string(internal::ToMillis(options.max_fetch_wait))},
  };
  if (options.group_id.empty()) {
    // librdkafka insists on a group id even for a consumer that only assigns
    // partitions and never commits; such a group never appears on the broker.
    properties["group.id"] = "helpline-unused";
  } else {
    properties["group.id"] = options.group_id;
    if (client.group_protocol == GroupProtocol::kConsumer) {
      properties["group.protocol"] = "consumer";
    } else {
      properties["group.protocol"] = "classic";
      properties["partition.assignment.strategy"] = "cooperative-sticky";
      properties["session.timeout.ms"] = std::to_string(internal::ToMillis(options.session_timeout));
      properties["heartbeat.interval.ms"] =
          std::to_string(std::max(100, internal::ToMillis(options.session_timeout) / 3));
    }
  }
  for (const auto& [name, value] : options.overrides) properties[name] = value;

  std::unique_ptr<RdKafka::Conf> conf = internal::NewGlobalConf();
  if (absl::Status status = internal::BuildConf(client, properties, conf.get()); !status.ok()) {
    return status;
  }
  std::string error;
  std::unique_ptr<RdKafkaConsumer> consumer(new RdKafkaConsumer());
  if (options.on_rebalance) {
    consumer->rebalance_ = std::make_unique<RebalanceAdapter>(options.on_rebalance);
    conf->set("rebalance_cb", consumer->rebalance_.get(), error);
  }
  consumer->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
  if (consumer->consumer_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a Kafka consumer: ", error));
  }
  consumer->broker_watch_ = std::make_unique<internal::BrokerWatch>(client.bootstrap_servers);
  return consumer;
}

RdKafkaConsumer::~RdKafkaConsumer() { Close(); }

void RdKafkaConsumer::Close() {
  if (consumer_ == nullptr || closed_) return;
  closed_ = true;
  consumer_->close();
}

absl::Status RdKafkaConsumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  std::vector<RdKafka::TopicPartition*> native = ToNative(partitions);
  RdKafka::ErrorCode code = consumer_->assign(native);
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("assign: ", RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

namespace {

absl::Status FromError(RdKafka::Error* raw, const char* operation) {
  std::unique_ptr<RdKafka::Error> error(raw);
  if (error == nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(operation, ": ", error->str()));
}

}  // namespace

absl::Status RdKafkaConsumer::IncrementalAssign(const std::vector<TopicPartitionOffset>& partitions) {
  std::vector<RdKafka::TopicPartition*> native = ToNative(partitions);
  absl::Status status = FromError(consumer_->incremental_assign(native), "incremental_assign");
  RdKafka::TopicPartition::destroy(native);
  return status;
}

absl::Status RdKafkaConsumer::IncrementalUnassign(const std::vector<TopicPartitionOffset>& partitions) {
  std::vector<RdKafka::TopicPartition*> native = ToNative(partitions);
  absl::Status status = FromError(consumer_->incremental_unassign(native), "incremental_unassign");
  RdKafka::TopicPartition::destroy(native);
  return status;
}

absl::Status RdKafkaConsumer::Pause(const std::vector<TopicPartitionOffset>& partitions) {
  std::vector<RdKafka::TopicPartition*> native = ToNative(partitions);
  RdKafka::ErrorCode code = consumer_->pause(native);
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("pause: ", RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

absl::Status RdKafkaConsumer::Resume(const std::vector<TopicPartitionOffset>& partitions) {
  std::vector<RdKafka::TopicPartition*> native = ToNative(partitions);
  RdKafka::ErrorCode code = consumer_->resume(native);
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("resume: ", RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

namespace internal {

absl::StatusOr<std::optional<Record>> ToRecord(RdKafka::Message& message) {
  switch (message.err()) {
    case RdKafka::ERR_NO_ERROR:
      break;
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR__PARTITION_EOF:
      return std::nullopt;
    case RdKafka::ERR__FATAL:
      return absl::FailedPreconditionError(absl::StrCat("fatal consumer error: ", message.errstr()));
    default:
      return absl::UnavailableError(absl::StrCat("consume: ", message.errstr()));
  }
  Record record;
  record.topic = message.topic_name();
  record.partition = message.partition();
  record.offset = message.offset();
  if (message.key() != nullptr) record.key = *message.key();
  record.value.assign(static_cast<const char*>(message.payload()), message.len());
  record.timestamp = absl::FromUnixMillis(message.timestamp().timestamp);
  if (RdKafka::Headers* headers = message.headers()) {
    for (const RdKafka::Headers::Header& header : headers->get_all()) {
      record.headers.push_back(
          {header.key(), header.value() == nullptr
                             ? std::string()
                             : std::string(static_cast<const char*>(header.value()),
                                           header.value_size())});
    }
  }
  return record;
}

}  // namespace internal

absl::StatusOr<std::optional<Record>> RdKafkaConsumer::Poll(absl::Duration timeout) {
  broker_watch_->Check(*consumer_);
  std::unique_ptr<RdKafka::Message> message(consumer_->consume(internal::ToMillis(timeout)));
  return internal::ToRecord(*message);
}

absl::Status RdKafkaConsumer::Subscribe(const std::vector<std::string>& topics) {
  RdKafka::ErrorCode code = consumer_->subscribe(topics);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("subscribe: ", RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

absl::Status RdKafkaConsumer::Seek(const TopicPartitionOffset& position, absl::Duration timeout) {
  std::unique_ptr<RdKafka::TopicPartition> partition(
      RdKafka::TopicPartition::create(position.topic, position.partition, position.offset));
  RdKafka::ErrorCode code = consumer_->seek(*partition, internal::ToMillis(timeout));
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("seek ", position.topic, "/", position.partition,
                                               " to ", position.offset, ": ", RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RdKafkaConsumer::Position(const std::string& topic, int32_t partition) {
  std::vector<RdKafka::TopicPartition*> native = {RdKafka::TopicPartition::create(topic, partition)};
  RdKafka::ErrorCode code = consumer_->position(native);
  int64_t offset = native[0]->offset();
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("position: ", RdKafka::err2str(code)));
  }
  return offset;
}

std::unique_ptr<RecordQueue> RdKafkaConsumer::NewQueue() {
  return std::make_unique<RecordQueue>(
      std::unique_ptr<RdKafka::Queue>(RdKafka::Queue::create(consumer_.get())));
}

absl::Status RdKafkaConsumer::Route(const std::string& topic, int32_t partition, RecordQueue& queue) {
  std::unique_ptr<RdKafka::TopicPartition> native(RdKafka::TopicPartition::create(topic, partition));
  std::unique_ptr<RdKafka::Queue> source(consumer_->get_partition_queue(native.get()));
  if (source == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no queue for ", topic, "/", partition));
  }
  RdKafka::ErrorCode code = source->forward(queue.native());
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("route ", topic, "/", partition, ": ",
                                                   RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

void RdKafkaConsumer::Unroute(const std::string& topic, int32_t partition) {
  std::unique_ptr<RdKafka::TopicPartition> native(RdKafka::TopicPartition::create(topic, partition));
  std::unique_ptr<RdKafka::Queue> source(consumer_->get_partition_queue(native.get()));
  if (source != nullptr) source->forward(nullptr);
}

RecordQueue::RecordQueue(std::unique_ptr<RdKafka::Queue> queue) : queue_(std::move(queue)) {}

RecordQueue::~RecordQueue() = default;

absl::StatusOr<std::optional<Record>> RecordQueue::Poll(absl::Duration timeout) {
  std::unique_ptr<RdKafka::Message> message(queue_->consume(internal::ToMillis(timeout)));
  return internal::ToRecord(*message);
}

absl::StatusOr<int> RdKafkaConsumer::PartitionCount(const std::string& topic, absl::Duration timeout) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> handle(RdKafka::Topic::create(consumer_.get(), topic, nullptr, error));
  if (handle == nullptr) return absl::InvalidArgumentError(absl::StrCat(topic, ": ", error));
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    RdKafka::Metadata* raw = nullptr;
    RdKafka::ErrorCode code = consumer_->metadata(
        /*all_topics=*/false, handle.get(), &raw,
        std::max(100, internal::ToMillis(deadline - absl::Now())));
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    if (code == RdKafka::ERR_NO_ERROR && metadata != nullptr) {
      for (const RdKafka::TopicMetadata* found : *metadata->topics()) {
        if (found->topic() != topic) continue;
        if (found->err() == RdKafka::ERR_NO_ERROR && !found->partitions()->empty()) {
          return static_cast<int>(found->partitions()->size());
        }
        if (found->err() == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART) {
          return absl::FailedPreconditionError(absl::StrCat("topic ", topic, " does not exist"));
        }
      }
    }
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("metadata of ", topic, ": ", RdKafka::err2str(code)));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

std::optional<int64_t> RdKafkaConsumer::CachedHighWatermark(const std::string& topic, int32_t partition) {
  int64_t low = 0, high = 0;
  if (consumer_->get_watermark_offsets(topic, partition, &low, &high) != RdKafka::ERR_NO_ERROR ||
      high < 0) {
    return std::nullopt;
  }
  return high;
}

absl::StatusOr<std::pair<int64_t, int64_t>> RdKafkaConsumer::WatermarkOffsets(const std::string& topic,
                                                                       int32_t partition,
                                                                       absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int64_t low = 0, high = 0;
    RdKafka::ErrorCode code = consumer_->query_watermark_offsets(
        topic, partition, &low, &high, std::max(100, internal::ToMillis(deadline - absl::Now())));
    if (code == RdKafka::ERR_NO_ERROR) return std::make_pair(low, high);
    // A partition just created (or just moved) has a leader in the metadata
    // a moment before that broker acts as its leader.
    bool transient = code == RdKafka::ERR_NOT_LEADER_FOR_PARTITION ||
                     code == RdKafka::ERR_LEADER_NOT_AVAILABLE ||
                     code == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART;
    if (!transient || absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("watermarks of ", topic, "/", partition, ": ",
                                                 RdKafka::err2str(code)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<std::vector<int64_t>> RdKafkaConsumer::EndOffsets(const std::string& topic,
                                                          int partitions, absl::Duration timeout) {
  std::vector<TopicPartitionOffset> wanted;
  for (int32_t p = 0; p < partitions; ++p) wanted.push_back({topic, p, -1});  // -1: the latest
  std::vector<RdKafka::TopicPartition*> native = ToNative(wanted);
  RdKafka::ErrorCode code = consumer_->offsetsForTimes(native, internal::ToMillis(timeout));
  std::vector<int64_t> ends;
  for (RdKafka::TopicPartition* item : native) {
    if (code == RdKafka::ERR_NO_ERROR && item->err() != RdKafka::ERR_NO_ERROR) code = item->err();
    ends.push_back(item->offset());
  }
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("end offsets of ", topic, ": ", RdKafka::err2str(code)));
  }
  return ends;
}

absl::StatusOr<std::vector<TopicPartitionOffset>> RdKafkaConsumer::Committed(
    const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) {
  std::vector<RdKafka::TopicPartition*> native = ToNative(partitions);
  RdKafka::ErrorCode code = consumer_->committed(native, internal::ToMillis(timeout));
  std::vector<TopicPartitionOffset> out;
  for (RdKafka::TopicPartition* item : native) {
    out.push_back({item->topic(), item->partition(), item->offset()});
    // A partition whose lookup failed has no offset to report, not "none".
    if (code == RdKafka::ERR_NO_ERROR && item->err() != RdKafka::ERR_NO_ERROR) code = item->err();
  }
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("committed offsets: ", RdKafka::err2str(code)));
  }
  return out;
}

absl::Status RdKafkaConsumer::Commit(const std::vector<TopicPartitionOffset>& offsets) {
  std::vector<RdKafka::TopicPartition*> native = ToNative(offsets);
  RdKafka::ErrorCode code = consumer_->commitSync(native);
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("commit: ", RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

}  // namespace helpline::kafka
