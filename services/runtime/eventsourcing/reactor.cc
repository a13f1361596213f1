#include "services/runtime/eventsourcing/reactor.h"

#include <algorithm>
#include <set>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "absl/strings/escaping.h"
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
                                      const kafka::Record& source, absl::string_view discriminator,
                                      const ReactionTarget& target) {
  meta.set_command_id(
      ids::DerivedCommandId(source_meta.event_id(), absl::StrCat(target.name, "/", discriminator)));
  meta.set_correlation_id(source_meta.correlation_id());
  meta.mutable_actor()->set_system(target.name);
  meta.set_traceparent(NewTraceparent(source.HeaderValue("traceparent").value_or("")));
  meta.clear_reply_to();
  *meta.mutable_source_occurred_at() = source_meta.occurred_at();
  return kafka::OutgoingRecord{target.commands_topic, std::nullopt, meta.aggregate_id(),
                               command.SerializeAsString(), {{"traceparent", meta.traceparent()}}};
}

std::string ContentDiscriminator(const google::protobuf::Message& command,
                                 const runtime::v1::CommandMeta& meta) {
  std::unique_ptr<google::protobuf::Message> body(command.New());
  body->CopyFrom(command);
  const google::protobuf::FieldDescriptor* meta_field =
      body->GetDescriptor()->FindFieldByName("meta");
  if (meta_field != nullptr) body->GetReflection()->ClearField(body.get(), meta_field);
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    body->SerializeToCodedStream(&coded);
  }
  return absl::StrCat(meta.aggregate_id(), "/", absl::BytesToHexString(bytes));
}

}  // namespace internal

namespace {

constexpr int64_t kNoOffset = -1001;

// The group's committed offsets of every partition of `topic`, by partition.
absl::StatusOr<std::map<int32_t, int64_t>> GroupOffsets(const kafka::ClientConfig& client,
                                                        const std::string& group,
                                                        const std::string& topic) {
  kafka::ConsumerOptions options;
  options.group_id = group;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer = kafka::Consumer::Create(client, options);
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<int> partitions = (*consumer)->PartitionCount(topic, absl::Seconds(30));
  if (!partitions.ok()) return partitions.status();
  std::vector<kafka::TopicPartitionOffset> wanted;
  for (int32_t p = 0; p < *partitions; ++p) wanted.push_back({topic, p, kNoOffset});
  absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> committed =
      (*consumer)->Committed(wanted, absl::Seconds(30));
  if (!committed.ok()) return committed.status();
  std::map<int32_t, int64_t> offsets;
  for (const kafka::TopicPartitionOffset& each : *committed) offsets[each.partition] = each.offset;
  return offsets;
}

// A reactor's group that has no offset yet for a partition starts where
// the subscriptions' own groups (one per subscription before reactions
// shared a group) left off: at the earliest of them, so that no reaction
// misses an event (a reaction seen twice is a no-op).
absl::Status ContinueFromSubscriptionGroups(const kafka::ClientConfig& client,
                                            const std::string& group,
                                            const std::vector<Subscription>& subscriptions) {
  std::set<std::string> topics;
  for (const Subscription& each : subscriptions) topics.insert(each.source_topic);
  std::vector<kafka::TopicPartitionOffset> seeds;
  for (const std::string& topic : topics) {
    absl::StatusOr<std::map<int32_t, int64_t>> own = GroupOffsets(client, group, topic);
    if (!own.ok()) return own.status();
    // Per partition, the earliest offset any old group committed. An old
    // group without an offset there (it never read the partition, or its
    // offsets expired) does not send every reaction back to the first event.
    std::map<int32_t, int64_t> earliest;
    std::map<int32_t, std::vector<std::string>> without_offset;
    for (const Subscription& each : subscriptions) {
      if (each.source_topic != topic) continue;
      absl::StatusOr<std::map<int32_t, int64_t>> old = GroupOffsets(client, each.name, topic);
      if (!old.ok()) return old.status();
      for (const auto& [partition, offset] : *old) {
        if (offset < 0) {
          without_offset[partition].push_back(each.name);
          continue;
        }
        auto [it, added] = earliest.emplace(partition, offset);
        if (!added) it->second = std::min(it->second, offset);
      }
    }
    for (const auto& [partition, offset] : earliest) {
      if (own->at(partition) != kNoOffset) continue;
      seeds.push_back({topic, partition, offset});
      if (auto missing = without_offset.find(partition); missing != without_offset.end()) {
        log::Warn("reactions without an offset of their own continue with the others",
                  {{"group", group}, {"topic", topic}, {"partition", partition},
                   {"offset", offset}, {"reactions", missing->second}});
      }
    }
  }
  if (seeds.empty()) return absl::OkStatus();
  kafka::ConsumerOptions options;
  options.group_id = group;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer = kafka::Consumer::Create(client, options);
  if (!consumer.ok()) return consumer.status();
  log::Info("reactions continue where their own groups left off",
            {{"group", group}, {"partitions", seeds.size()}});
  return (*consumer)->Commit(seeds);
}

}  // namespace

Reactor::Reactor(kafka::SharedClients& kafka, ReactorOptions options,
                 std::vector<Subscription> subscriptions)
    : kafka_(kafka), options_(std::move(options)), subscriptions_(std::move(subscriptions)) {}

Reactor::~Reactor() { Stop(); }

absl::Status Reactor::Start() {
  if (options_.metrics != nullptr) options_.metrics->AddReader(options_.group);
  if (options_.continue_from_subscription_groups) {
    if (absl::Status s = ContinueFromSubscriptionGroups(kafka_.config, options_.group, subscriptions_);
        !s.ok()) {
      return s;
    }
  }
  kafka::ConsumerOptions consumer_options;
  consumer_options.group_id = options_.group;
  consumer_options.session_timeout = options_.session_timeout;
  // Runs on this reactor's thread, inside Poll.
  consumer_options.on_rebalance = [this](const kafka::Rebalance& rebalance) {
    {
      absl::MutexLock lock(&owned_mutex_);
      for (const kafka::TopicPartitionOffset& each : rebalance.partitions) {
        const std::pair<std::string, int32_t> key{each.topic, each.partition};
        if (rebalance.assigned) {
          owned_.insert_or_assign(key, Owned{PartitionLag(absl::Now())});
        } else if (owned_.erase(key) > 0 && options_.metrics != nullptr) {
          options_.metrics->RemoveLag(options_.group, each.topic, each.partition);
        }
      }
    }
    // When closing (consumer_ already let go), Run has committed everything.
    if (rebalance.assigned || consumer_ == nullptr) return;
    std::vector<kafka::TopicPartitionOffset> leaving;
    for (const kafka::TopicPartitionOffset& each : rebalance.partitions) {
      // Events of this batch from it: their offsets are the new owner's
      // business (their outputs go out with the batch's others, if any).
      next_offsets_.erase({each.topic, each.partition});
      auto pending = to_commit_.find({each.topic, each.partition});
      if (pending == to_commit_.end()) continue;
      leaving.push_back({each.topic, each.partition, pending->second});
      to_commit_.erase(pending);
    }
    // Lost: another member may have moved on already; its offsets stand.
    if (rebalance.lost || leaving.empty()) return;
    if (absl::Status committed = consumer_->Commit(leaving); !committed.ok()) {
      log::Warn("reactor offsets of leaving partitions not committed",
                {{"group", options_.group}, {"error", committed.ToString()}});
    }
  };
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer =
      kafka::Consumer::Create(kafka_.config, consumer_options);
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);
  std::set<std::string> topics;
  for (const Subscription& each : subscriptions_) topics.insert(each.source_topic);
  if (absl::Status s = consumer_->Subscribe({topics.begin(), topics.end()}); !s.ok()) return s;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Reactor::Stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  consumer_.reset();
}

void Reactor::Run() {
  std::map<std::string, std::unique_ptr<google::protobuf::Message>> events;  // one per subscription
  for (const Subscription& each : subscriptions_) events[each.name] = each.reaction->NewEvent();
  while (!stopping_.load()) {
    std::vector<kafka::OutgoingRecord> outputs;
    next_offsets_.clear();
    absl::Time batch_end = absl::Now() + absl::Milliseconds(20);
    while (outputs.size() < 500 && absl::Now() < batch_end && !stopping_.load()) {
      absl::StatusOr<std::optional<kafka::Record>> polled =
          consumer_->Poll(next_offsets_.empty() ? absl::Milliseconds(100) : absl::Milliseconds(5));
      if (!polled.ok()) {
        log::Warn("reactor", {{"group", options_.group}, {"error", polled.status().ToString()}});
        break;
      }
      if (!polled->has_value()) {
        if (next_offsets_.empty()) batch_end = absl::Now() + absl::Milliseconds(20);
        continue;
      }
      const kafka::Record& record = **polled;
      next_offsets_[{record.topic, record.partition}] = record.offset + 1;
      batch_written_[{record.topic, record.partition}] = record.timestamp;
      batch_first_.emplace(std::pair{record.topic, record.partition}, record.offset);
      batch_pending_.store(true);
      ++events_seen_;
      bool dead_lettered = false;
      for (const Subscription& each : subscriptions_) {
        if (each.source_topic != record.topic) continue;
        google::protobuf::Message& event = *events[each.name];
        event.Clear();
        if (!event.ParseFromString(record.value)) {
          if (!dead_lettered) {
            log::Error("undecodable event sent to the dead-letter topic",
                       {{"reaction", each.name}, {"offset", record.offset}});
            outputs.push_back(DeadLetter(options_.deadletter_topic, record,
                                         absl::StrCat("not a ", event.GetDescriptor()->full_name()),
                                         each.name));
            dead_lettered = true;
            if (options_.metrics != nullptr) {
              options_.metrics->CountDeadLetter(options_.group, "undecodable");
            }
          }
          continue;
        }
        for (kafka::OutgoingRecord& output :
             each.reaction->Outputs(event, record, {each.name, options_.commands_topic})) {
          outputs.push_back(std::move(output));
        }
      }
    }
    if (!next_offsets_.empty()) {
      {
        // What was read before this batch is done: a first batch that
        // cannot be written shows as lag, not as caught up.
        absl::MutexLock lock(&owned_mutex_);
        for (const auto& [partition, first] : batch_first_) {
          auto owned = owned_.find(partition);
          if (owned != owned_.end() && owned->second.next_done < 0) owned->second.next_done = first;
        }
      }
      bool sent = false;
      while (!stopping_.load()) {
        absl::Status status = Send(outputs);
        if (status.ok()) {
          sent = true;
          break;
        }
        log::Warn("reactor could not write its outputs; retrying",
                  {{"group", options_.group}, {"error", status.ToString()}});
        absl::SleepFor(absl::Milliseconds(200));
      }
      if (!sent) break;  // stopping: these events are read again by the next owner
      absl::MutexLock lock(&owned_mutex_);
      for (const auto& [partition, offset] : next_offsets_) {
        to_commit_[partition] = offset;
        if (auto owned = owned_.find(partition); owned != owned_.end()) {
          owned->second.next_done = offset;
          owned->second.last_done_written = batch_written_[partition];
        }
      }
    }
    batch_written_.clear();
    batch_first_.clear();
    batch_pending_.store(false);
    if (absl::Now() - committed_at_ >= absl::Seconds(1)) CommitOffsets();
  }
  CommitOffsets();
}

void Reactor::ReportLag() {
  if (options_.metrics == nullptr || consumer_ == nullptr) return;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&owned_mutex_);
  for (auto& [partition, owned] : owned_) {
    std::optional<int64_t> end = consumer_->CachedHighWatermark(partition.first, partition.second);
    int64_t done = owned.next_done;
    if (!batch_pending_.load()) {
      absl::StatusOr<int64_t> position = consumer_->Position(partition.first, partition.second);
      if (position.ok()) done = std::max(done, *position);
    }
    if (!end || done < 0) continue;
    options_.metrics->SetLag(options_.group, partition.first, partition.second,
                             owned.lag.Update(done, *end, owned.last_done_written, now));
  }
}

void Reactor::CommitOffsets() {
  committed_at_ = absl::Now();
  if (to_commit_.empty()) return;
  std::vector<kafka::TopicPartitionOffset> offsets;
  for (const auto& [partition, offset] : to_commit_) {
    offsets.push_back({partition.first, partition.second, offset});
  }
  to_commit_.clear();
  // A commit refused after a rebalance only means the new owner reads these
  // events again; its commands are then no-ops.
  if (absl::Status committed = consumer_->Commit(offsets); !committed.ok()) {
    log::Warn("reactor offsets not committed", {{"group", options_.group},
                                                {"error", committed.ToString()}});
  }
}

absl::Status Reactor::Send(const std::vector<kafka::OutgoingRecord>& outputs) {
  // The producer is shared: wait for these records' deliveries, not for
  // everything the process has in flight.
  struct Deliveries {
    absl::Mutex mutex;
    size_t pending = 0;
    size_t failed = 0;
  };
  auto deliveries = std::make_shared<Deliveries>();
  for (const kafka::OutgoingRecord& output : outputs) {
    {
      absl::MutexLock lock(&deliveries->mutex);
      ++deliveries->pending;
    }
    absl::Status queued = kafka_.producer->Produce(output, [deliveries](const kafka::Delivery& d) {
      absl::MutexLock lock(&deliveries->mutex);
      --deliveries->pending;
      if (!d.status.ok()) ++deliveries->failed;
    });
    if (!queued.ok()) {
      absl::MutexLock lock(&deliveries->mutex);
      --deliveries->pending;
      ++deliveries->failed;
    }
  }
  {
    absl::MutexLock lock(&deliveries->mutex);
    auto delivered = [&deliveries] { return deliveries->pending == 0; };
    if (!deliveries->mutex.AwaitWithTimeout(absl::Condition(&delivered), absl::Seconds(30))) {
      return absl::UnavailableError("outputs not delivered within 30 s");
    }
    if (deliveries->failed > 0) return absl::UnavailableError("some outputs were not delivered");
  }
  return absl::OkStatus();
}

}  // namespace helpline::es
