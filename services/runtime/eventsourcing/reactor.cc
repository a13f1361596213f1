#include "services/runtime/eventsourcing/reactor.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/server/log.h"

namespace helpline::es {

namespace internal {

kafka::OutgoingRecord ReactionCommand(google::protobuf::Message& command,
                                      runtime::v1::CommandMeta& meta,
                                      const runtime::v1::EventMeta& source_meta,
                                      const kafka::Record& source, size_t n,
                                      const ReactorOptions& options) {
  meta.set_command_id(ids::DerivedCommandId(source_meta.event_id(), absl::StrCat(options.name, "/", n)));
  meta.set_correlation_id(source_meta.correlation_id());
  meta.mutable_actor()->set_system(options.name);
  meta.set_traceparent(NewTraceparent(source.HeaderValue("traceparent").value_or("")));
  meta.clear_reply_to();
  return kafka::OutgoingRecord{options.commands_topic, std::nullopt, meta.aggregate_id(),
                               command.SerializeAsString(), {{"traceparent", meta.traceparent()}}};
}

}  // namespace internal

Reactor::Reactor(kafka::ClientConfig client, ReactorOptions options, const Reaction& reaction)
    : client_(std::move(client)), options_(std::move(options)), reaction_(reaction) {}

Reactor::~Reactor() { Stop(); }

absl::Status Reactor::Start() {
  kafka::ConsumerOptions consumer_options;
  consumer_options.group_id = options_.name;
  consumer_options.session_timeout = options_.session_timeout;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer =
      kafka::Consumer::Create(client_, consumer_options);
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
      kafka::Producer::Create(client_, kafka::ProducerOptions{});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  if (absl::Status s = consumer_->Subscribe({options_.source_topic}); !s.ok()) return s;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Reactor::Stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  consumer_.reset();
}

void Reactor::Run() {
  std::unique_ptr<google::protobuf::Message> event = reaction_.NewEvent();
  while (!stopping_.load()) {
    std::vector<kafka::OutgoingRecord> outputs;
    std::map<int32_t, int64_t> next_offsets;
    absl::Time batch_end = absl::Now() + absl::Milliseconds(20);
    while (outputs.size() < 500 && absl::Now() < batch_end && !stopping_.load()) {
      absl::StatusOr<std::optional<kafka::Record>> polled =
          consumer_->Poll(absl::Milliseconds(10));
      if (!polled.ok()) {
        log::Warn("reactor", {{"reactor", options_.name}, {"error", polled.status().ToString()}});
        break;
      }
      if (!polled->has_value()) continue;
      const kafka::Record& record = **polled;
      next_offsets[record.partition] = record.offset + 1;
      ++events_seen_;
      event->Clear();
      if (!event->ParseFromString(record.value)) {
        log::Error("undecodable event sent to the dead-letter topic",
                   {{"reactor", options_.name}, {"offset", record.offset}});
        outputs.push_back(DeadLetter(options_.deadletter_topic, record,
                                      absl::StrCat("not a ", event->GetDescriptor()->full_name()),
                                      options_.name));
        continue;
      }
      for (kafka::OutgoingRecord& output : reaction_.Outputs(*event, record, options_)) {
        outputs.push_back(std::move(output));
      }
    }
    if (next_offsets.empty()) continue;
    while (!stopping_.load()) {
      absl::Status sent = SendAndCommit(outputs, next_offsets);
      if (sent.ok()) break;
      log::Warn("reactor could not write its outputs; retrying",
                {{"reactor", options_.name}, {"error", sent.ToString()}});
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
}

absl::Status Reactor::SendAndCommit(std::vector<kafka::OutgoingRecord>& outputs,
                                    std::map<int32_t, int64_t>& next_offsets) {
  auto failures = std::make_shared<std::atomic<int>>(0);
  for (const kafka::OutgoingRecord& output : outputs) {
    absl::Status queued = producer_->Produce(output, [failures](const kafka::Delivery& d) {
      if (!d.status.ok()) ++*failures;
    });
    if (!queued.ok()) return queued;
  }
  if (absl::Status s = producer_->Flush(absl::Seconds(30)); !s.ok()) return s;
  if (failures->load() > 0) return absl::UnavailableError("some outputs were not delivered");
  std::vector<kafka::TopicPartitionOffset> offsets;
  for (const auto& [partition, offset] : next_offsets) {
    offsets.push_back({options_.source_topic, partition, offset});
  }
  // A commit refused after a rebalance only means the new owner reads these
  // events again; its commands are then no-ops.
  if (absl::Status committed = consumer_->Commit(offsets); !committed.ok()) {
    log::Warn("reactor offsets not committed", {{"reactor", options_.name},
                                                {"error", committed.ToString()}});
  }
  return absl::OkStatus();
}

}  // namespace helpline::es
