#include "services/runtime/eventsourcing/partition_worker.h"

#include <exception>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/server/log.h"

namespace helpline::es {
namespace {

using google::protobuf::Message;

constexpr int kMaxBatchRetries = 5;
// Snapshot records written per transaction between batches.
constexpr size_t kSnapshotChunkBytes = 256 << 10;

// Anything that is not ABORTED ends the producer: FAILED_PRECONDITION, with
// the original's payload (fencing) when it already was.
absl::Status AsFatal(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kFailedPrecondition) return status;
  return absl::FailedPreconditionError(status.message());
}

std::string SnapshotMarkerKey(int32_t partition) {
  return absl::StrCat("snapshot-marker:", partition);
}

std::string SnapshotPartKey(const std::string& aggregate_id, int32_t index) {
  return absl::StrCat("snapshot-part:", index, ":", aggregate_id);
}

// An aggregate's snapshot as records: one, or parts of at most `part_bytes`
// when it is larger.
std::vector<std::string> SnapshotValues(const runtime::v1::AggregateSnapshot& aggregate,
                                        size_t part_bytes) {
  runtime::v1::SnapshotRecord whole;
  *whole.mutable_aggregate() = aggregate;
  std::string value = whole.SerializeAsString();
  if (value.size() <= part_bytes) return {value};
  const std::string data = aggregate.SerializeAsString();
  const int32_t count = static_cast<int32_t>((data.size() + part_bytes - 1) / part_bytes);
  std::vector<std::string> parts;
  for (int32_t index = 0; index < count; ++index) {
    runtime::v1::SnapshotRecord part;
    part.mutable_part()->set_aggregate_id(aggregate.aggregate_id());
    part.mutable_part()->set_version(aggregate.version());
    part.mutable_part()->set_index(index);
    part.mutable_part()->set_count(count);
    part.mutable_part()->set_data(data.substr(index * part_bytes, part_bytes));
    parts.push_back(part.SerializeAsString());
  }
  return parts;
}

// Reads one partition from `from` to the end it had when reading began.
absl::Status ReadToEnd(const kafka::ClientConfig& client, const std::string& topic,
                       int32_t partition, int64_t from, const std::atomic<bool>& stopping,
                       const std::function<void(const kafka::Record&)>& visit) {
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer =
      kafka::Consumer::Create(client, kafka::ConsumerOptions{});
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<std::pair<int64_t, int64_t>> watermarks =
      (*consumer)->WatermarkOffsets(topic, partition, absl::Seconds(10));
  if (!watermarks.ok()) return watermarks.status();
  int64_t end = watermarks->second;
  if (from >= end) return absl::OkStatus();
  if (absl::Status s = (*consumer)->Assign({{topic, partition, from}}); !s.ok()) return s;
  for (;;) {
    if (stopping.load()) return absl::CancelledError("stopping");
    absl::StatusOr<std::optional<kafka::Record>> record = (*consumer)->Poll(absl::Milliseconds(100));
    if (!record.ok()) {
      if (record.status().code() == absl::StatusCode::kFailedPrecondition) return record.status();
      log::Warn("reading back", {{"topic", topic}, {"error", record.status().ToString()}});
      continue;
    }
    if (record->has_value()) visit(**record);
    absl::StatusOr<int64_t> position = (*consumer)->Position(topic, partition);
    if (position.ok() && *position >= end) return absl::OkStatus();
  }
}

}  // namespace

struct PartitionWorker::Batch {
  struct PendingEvent {
    std::string aggregate_id;
    std::string command_id;
    kafka::OutgoingRecord record;
  };
  struct PendingReply {
    runtime::v1::Reply reply;
    int32_t partition = 0;
    std::string key;
  };

  // Copies of the aggregates this batch touched: decided against, and kept
  // only if the transaction commits.
  absl::flat_hash_map<std::string, WorkingAggregate> working;
  std::vector<PendingEvent> events;
  std::vector<PendingReply> replies;
  std::vector<kafka::OutgoingRecord> dead_letters;
  std::vector<std::string> result_counts;  // one metrics label per command

  WorkingAggregate& Get(const std::string& id, PartitionState& state) {
    auto it = working.find(id);
    if (it != working.end()) return it->second;
    return working.emplace(id, state.Checkout(id)).first->second;
  }
};

PartitionWorker::PartitionWorker(kafka::ClientConfig client, const ProcessorOptions& options,
                                 int32_t partition, const AggregateType& type, const Clock& clock,
                                 kafka::Consumer& commands,
                                 std::unique_ptr<kafka::PartitionReader> reader,
                                 ProcessorMetrics* metrics)
    : client_(std::move(client)),
      options_(options),
      partition_(partition),
      type_(type),
      clock_(clock),
      commands_(commands),
      reader_(std::move(reader)),
      metrics_(metrics),
      source_(absl::StrCat("helpline/", options.service)),
      state_(type, options.dedupe_window, options.max_handled_per_aggregate) {}

PartitionWorker::~PartitionWorker() { Stop(/*commit_in_flight=*/false); }

void PartitionWorker::Start() { thread_ = std::thread([this] { Run(); }); }

void PartitionWorker::Stop(bool commit_in_flight) {
  if (!commit_in_flight) abandon_.store(true);
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::string PartitionWorker::StateDigest() {
  absl::MutexLock lock(&state_mutex_);
  return state_.Digest();
}

void PartitionWorker::Run() {
  while (!stopping_.load()) {
    absl::Status recovered = Recover();
    if (!recovered.ok()) {
      if (stopping_.load()) break;
      log::Warn("partition recovery failed; retrying", {{"partition", partition_},
                                                         {"error", recovered.ToString()}});
      absl::SleepFor(absl::Seconds(1));
      continue;
    }
    ready_.store(true);
    while (!stopping_.load()) {
      std::vector<kafka::Record> commands = CollectCommands();
      absl::Status result = RunBatch(commands);
      if (result.ok() && !commands.empty()) next_command_offset_ = commands.back().offset + 1;
      ReportLag();
      if (result.code() == absl::StatusCode::kCancelled) break;  // abandoned on stop
      if (!result.ok()) {
        if (metrics_ != nullptr) metrics_->CountTransactionFailure("fatal");
        if (kafka::IsFenced(result) || kafka::IsFenced(producer_->FatalError())) {
          HandleFencing();
        } else {
          log::Warn("transaction failed; rebuilding the partition from the log",
                    {{"partition", partition_}, {"error", result.ToString()}});
        }
        break;
      }
      MaybeSnapshot();
    }
    ready_.store(false);
  }
  producer_.reset();
}

void PartitionWorker::HandleFencing() {
  // A newer producer with our transactional id (another owner: a zombie's
  // successor, or a second processor given the same partitions) or the
  // coordinator aborting a transaction that outlived its timeout (a broker
  // restart) both show up as fencing. Wait a little, so that a processor
  // that lost its group session learns so and stops, then take it back.
  ++times_fenced_;
  log::Warn("fenced on this partition; taking it back shortly",
            {{"partition", partition_},
             {"backoff_ms", absl::ToInt64Milliseconds(options_.fencing_backoff)}});
  absl::Time until = absl::Now() + options_.fencing_backoff;
  while (!stopping_.load() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
}

absl::Status PartitionWorker::Recover() {
  absl::Time started = absl::Now();
  producer_.reset();  // a fenced or failed producer is never reused
  kafka::ProducerOptions producer_options;
  producer_options.transactional_id = absl::StrCat(options_.service, "-processor-", partition_);
  producer_options.transaction_timeout = options_.transaction_timeout;
  producer_options.delivery_timeout = options_.transaction_timeout;
  // Flush and commit send at once whatever the linger; a long one keeps the
  // producer's threads from waking every millisecond.
  producer_options.linger = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
      kafka::Producer::Create(client_, producer_options);
  if (!producer.ok()) return producer.status();
  // Fences the previous owner and aborts its open transaction, so what is
  // read below is all that will ever be committed before us.
  absl::Status init;
  for (int attempt = 0; attempt < 30 && !stopping_.load(); ++attempt) {
    init = (*producer)->InitTransactions(options_.transaction_timeout);
    if (init.code() != absl::StatusCode::kUnavailable) break;
  }
  if (!init.ok()) return init;
  if (absl::Status warm = (*producer)->WarmUp({options_.topics.events, options_.topics.replies,
                                               options_.topics.snapshots, options_.topics.deadletter},
                                              absl::Seconds(10));
      !warm.ok()) {
    return warm;
  }
  producer_ = *std::move(producer);

  {
    absl::MutexLock lock(&state_mutex_);
    state_.Clear();
  }
  changed_since_snapshot_.clear();
  snapshot_pending_.clear();
  int64_t events_from = 0;
  if (absl::Status s = LoadSnapshot(&events_from); !s.ok()) return s;
  events_since_snapshot_ = 0;
  if (absl::Status s = ReplayEvents(events_from); !s.ok()) return s;
  if (absl::Status s = SeekToCommitted(); !s.ok()) return s;
  last_snapshot_ = absl::Now();
  if (metrics_ != nullptr) {
    metrics_->ObserveRecovery(absl::ToDoubleSeconds(absl::Now() - started),
                              events_since_snapshot_);
  }
  absl::MutexLock lock(&state_mutex_);
  log::Info("partition ready", {{"partition", partition_},
                                {"aggregates", state_.size()},
                                {"events_replayed", events_since_snapshot_},
                                {"snapshot_events_offset", events_from},
                                {"ms", absl::ToInt64Milliseconds(absl::Now() - started)}});
  return absl::OkStatus();
}

absl::Status PartitionWorker::LoadSnapshot(int64_t* events_from) {
  std::map<std::string, runtime::v1::AggregateSnapshot> latest;
  // Aggregate id -> version -> the parts read, by index.
  std::map<std::string, std::map<int64_t, std::map<int32_t, runtime::v1::AggregatePart>>> parts;
  std::optional<runtime::v1::SnapshotMarker> marker;
  absl::Status read = ReadToEnd(
      client_, options_.topics.snapshots, partition_, 0, stopping_,
      [&](const kafka::Record& record) {
        runtime::v1::SnapshotRecord snapshot;
        if (!snapshot.ParseFromString(record.value)) {
          log::Error("undecodable snapshot record skipped",
                     {{"partition", partition_}, {"offset", record.offset}});
          return;
        }
        if (snapshot.has_marker()) {
          marker = snapshot.marker();
        } else if (snapshot.has_aggregate()) {
          latest[record.key] = std::move(*snapshot.mutable_aggregate());
        } else if (snapshot.has_part()) {
          runtime::v1::AggregatePart& part = *snapshot.mutable_part();
          parts[part.aggregate_id()][part.version()][part.index()] = std::move(part);
        }
      });
  if (!read.ok()) return read;
  // A large aggregate: its newest complete set of parts, if newer than its
  // single record. The parts of one snapshot are written in one
  // transaction, so a newest set with parts missing is damage: then no
  // snapshot of the partition is trusted and every event is replayed.
  for (auto& [id, versions] : parts) {
    const auto& [newest, by_index] = *versions.rbegin();
    const int32_t count = by_index.begin()->second.count();
    std::string data;
    for (const auto& [index, part] : by_index) data += part.data();
    runtime::v1::AggregateSnapshot whole;
    if (static_cast<int32_t>(by_index.size()) != count || by_index.rbegin()->first != count - 1 ||
        !whole.ParseFromString(data)) {
      log::Error("a snapshot's parts are missing or damaged; replaying the partition from the start",
                 {{"partition", partition_}, {"aggregate_id", id}, {"version", newest}});
      return absl::OkStatus();
    }
    auto single = latest.find(id);
    if (single == latest.end() || single->second.version() < whole.version()) {
      latest[id] = std::move(whole);
    }
  }
  if (!marker) return absl::OkStatus();  // no complete snapshot: replay everything
  absl::MutexLock lock(&state_mutex_);
  for (const auto& [id, snapshot] : latest) state_.LoadSnapshot(snapshot);
  *events_from = marker->events_offset();
  return absl::OkStatus();
}

absl::Status PartitionWorker::ReplayEvents(int64_t from) {
  events_next_offset_ = from;
  std::unique_ptr<Message> event = type_.NewEvent();
  return ReadToEnd(client_, options_.topics.events, partition_, from, stopping_,
                   [&](const kafka::Record& record) {
                     events_next_offset_ = record.offset + 1;
                     if (!event->ParseFromString(record.value)) {
                       log::Error("undecodable event skipped during rebuild",
                                  {{"partition", partition_}, {"offset", record.offset}});
                       return;
                     }
                     absl::MutexLock lock(&state_mutex_);
                     state_.ApplyCommitted(record.key, *event, record.offset);
                     changed_since_snapshot_.insert(record.key);
                     ++events_since_snapshot_;
                   });
}

void PartitionWorker::ReportLag() {
  const absl::Time now = absl::Now();
  if (metrics_ == nullptr || next_command_offset_ < 0 || now - lag_reported_at_ < absl::Seconds(1)) {
    return;
  }
  lag_reported_at_ = now;
  std::optional<int64_t> high = commands_.CachedHighWatermark(options_.topics.commands, partition_);
  if (high) metrics_->SetCommandsLag(partition_, std::max<int64_t>(0, *high - next_command_offset_));
}

absl::Status PartitionWorker::SeekToCommitted() {
  absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> committed =
      commands_.Committed({{options_.topics.commands, partition_, 0}}, absl::Seconds(10));
  if (!committed.ok()) return committed.status();
  int64_t offset = committed->front().offset;
  next_command_offset_ = std::max<int64_t>(offset, 0);
  return commands_.Seek({options_.topics.commands, partition_,
                         offset >= 0 ? offset : kafka::kOffsetBeginning},
                        absl::Seconds(10));
}

absl::Duration PartitionWorker::IdleWait() const {
  std::optional<absl::Time> next = state_.NextTimer();
  if (!next.has_value()) return options_.idle_poll;
  absl::Duration until = (*next - clock_.Now()) / options_.clock_rate;
  return std::clamp(until, absl::ZeroDuration(), options_.idle_poll);
}

std::vector<kafka::Record> PartitionWorker::CollectCommands() {
  std::vector<kafka::Record> commands;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration wait = IdleWait();
  while (static_cast<int>(commands.size()) < options_.max_batch_commands && !stopping_.load()) {
    absl::StatusOr<std::optional<kafka::Record>> record = reader_->Poll(wait);
    if (!record.ok()) {
      log::Warn("reading commands", {{"partition", partition_}, {"error", record.status().ToString()}});
      break;
    }
    if (!record->has_value()) {
      if (commands.empty() || absl::Now() >= deadline) break;
    } else {
      commands.push_back(std::move(**record));
      if (commands.size() == 1) deadline = absl::Now() + options_.max_batch_wait;
    }
    wait = std::max(absl::ZeroDuration(), deadline - absl::Now());
  }
  return commands;
}

void PartitionWorker::DeadLetter(Batch& batch, const kafka::Record& record,
                                 const std::string& reason) {
  log::Warn("command sent to the dead-letter topic",
            {{"partition", partition_}, {"offset", record.offset}, {"reason", reason}});
  batch.dead_letters.push_back(
      es::DeadLetter(options_.topics.deadletter, record, reason,
                     absl::StrCat(options_.service, "-processor")));
  batch.result_counts.push_back("dead_letter");
}

void PartitionWorker::Decide(Batch& batch, Message& command, const kafka::Record* source) {
  runtime::v1::CommandMeta& meta = *type_.MutableCommandMeta(command);
  Batch::PendingReply pending;
  pending.reply.set_command_id(meta.command_id());
  pending.reply.set_aggregate_id(meta.aggregate_id());
  pending.reply.set_events_partition(partition_);
  pending.reply.set_last_event_offset(-1);
  pending.partition = meta.reply_partition();
  pending.key = meta.reply_to();
  auto answer = [&](const absl::Status& status, const char* result) {
    errors::ToReply(status, &pending.reply);
    if (!meta.reply_to().empty()) batch.replies.push_back(pending);
    batch.result_counts.push_back(result);
  };

  if (meta.command_id().empty() || meta.aggregate_id().empty()) {
    answer(errors::InvalidField(meta.command_id().empty() ? "meta.command_id" : "meta.aggregate_id",
                                "is required"),
           "rejected");
    return;
  }
  if (source != nullptr && source->key != meta.aggregate_id()) {
    answer(errors::InvalidField("meta.aggregate_id", "must equal the record key"), "rejected");
    return;
  }

  WorkingAggregate& record = batch.Get(meta.aggregate_id(), state_);
  pending.reply.set_aggregate_version(record.version);
  if (record.FindHandled(meta.command_id()) != nullptr) {
    pending.reply.set_duplicate(true);
    answer(absl::OkStatus(), "duplicate");
    return;
  }
  if (meta.expected_version() != 0 && meta.expected_version() != record.version) {
    answer(absl::AbortedError(absl::StrCat("aggregate ", meta.aggregate_id(), " is at version ",
                                           record.version, "; the command expected version ",
                                           meta.expected_version())),
           "rejected");
    return;
  }

  DecideContext context{clock_.Now(), meta.aggregate_id(), record.version, &meta};
  absl::StatusOr<std::vector<std::unique_ptr<Message>>> events;
  try {
    events = type_.Decide(*record.state, command, context);
  } catch (const std::exception& e) {
    events = absl::InternalError(absl::StrCat("decide failed: ", e.what()));
  }
  if (!events.ok()) {
    answer(events.status(), "rejected");
    return;
  }
  for (const auto& event : *events) {
    if (event->ByteSizeLong() > options_.max_event_bytes) {
      answer(absl::ResourceExhaustedError(absl::StrCat(
                 "an event of this command would take ", event->ByteSizeLong(),
                 " bytes; the limit is ", options_.max_event_bytes)),
             "rejected");
      return;
    }
  }
  for (auto& event : *events) {
    runtime::v1::EventMeta& event_meta = *type_.MutableEventMeta(*event);
    event_meta.set_event_id(ids::NewUuidV7());
    event_meta.set_aggregate_id(meta.aggregate_id());
    event_meta.set_aggregate_version(record.version + 1);
    *event_meta.mutable_occurred_at() = ToProtoTime(context.now);
    event_meta.set_command_id(meta.command_id());
    event_meta.set_correlation_id(meta.correlation_id().empty() ? meta.command_id()
                                                                : meta.correlation_id());
    *event_meta.mutable_actor() = meta.actor();
    ApplyEvent(type_, *event, -1, *record.state, record.version, record.last_event_offset,
               record.new_handled);

    Batch::PendingEvent pending_event;
    pending_event.aggregate_id = meta.aggregate_id();
    pending_event.command_id = meta.command_id();
    pending_event.record.topic = options_.topics.events;
    pending_event.record.partition = partition_;
    pending_event.record.key = meta.aggregate_id();
    pending_event.record.value = event->SerializeAsString();
    pending_event.record.headers =
        EventHeaders(event_meta, *event, source_, NewTraceparent(meta.traceparent()));
    batch.events.push_back(std::move(pending_event));
  }
  for (auto& event : *events) record.events.push_back(std::move(event));
  pending.reply.set_aggregate_version(record.version);
  answer(absl::OkStatus(), "ok");
}

absl::Status PartitionWorker::RunBatch(const std::vector<kafka::Record>& commands) {
  for (int attempt = 0;; ++attempt) {
    absl::Time started = absl::Now();
    Batch batch;
    absl::Status status = TryBatch(commands, batch);
    if (status.ok()) {
      int64_t events = static_cast<int64_t>(batch.events.size());
      {
        absl::MutexLock lock(&state_mutex_);
        state_.DropSpares();
        for (auto& [id, record] : batch.working) {
          changed_since_snapshot_.insert(id);
          state_.Commit(id, std::move(record));
        }
      }
      events_since_snapshot_ += events;
      if (metrics_ != nullptr && !batch.result_counts.empty()) {
        metrics_->ObserveTransaction(absl::ToDoubleSeconds(absl::Now() - started),
                                     static_cast<int>(batch.result_counts.size()));
        for (const std::string& result : batch.result_counts) metrics_->CountCommand(result);
      }
      return status;
    }
    if (status.code() != absl::StatusCode::kAborted || attempt >= kMaxBatchRetries) return status;
    if (metrics_ != nullptr) metrics_->CountTransactionFailure("aborted");
    log::Warn("transaction aborted; deciding the batch again",
              {{"partition", partition_}, {"attempt", attempt + 1}, {"error", status.ToString()}});
    absl::SleepFor(absl::Milliseconds(50) * (attempt + 1));
  }
}

absl::Status PartitionWorker::TryBatch(const std::vector<kafka::Record>& commands, Batch& batch) {
  absl::Time now = clock_.Now();
  std::vector<std::string> due = state_.DueTimers(now, options_.max_batch_commands);
  if (commands.empty() && due.empty()) return absl::OkStatus();

  std::unique_ptr<Message> command = type_.NewCommand();
  for (const kafka::Record& record : commands) {
    command->Clear();
    if (!command->ParseFromString(record.value)) {
      DeadLetter(batch, record, absl::StrCat("not a ", command->GetDescriptor()->full_name()));
      continue;
    }
    Decide(batch, *command, &record);
  }
  for (const std::string& aggregate_id : due) {
    WorkingAggregate& record = batch.Get(aggregate_id, state_);
    std::optional<absl::Time> deadline = type_.NextDeadline(*record.state);
    std::unique_ptr<Message> timer_command =
        deadline && *deadline <= now ? type_.DeadlineCommand(*record.state, *deadline) : nullptr;
    int64_t version_before = record.version;
    if (timer_command != nullptr) {
      runtime::v1::CommandMeta& meta = *type_.MutableCommandMeta(*timer_command);
      meta.set_command_id(ids::DerivedCommandId(
          aggregate_id, absl::StrCat("timer/", record.version, "/", absl::ToUnixNanos(*deadline))));
      meta.set_aggregate_id(aggregate_id);
      meta.set_correlation_id(meta.command_id());
      meta.mutable_actor()->set_system(absl::StrCat(options_.service, ".timer"));
      Decide(batch, *timer_command, nullptr);
    }
    WorkingAggregate& after = batch.Get(aggregate_id, state_);
    if (after.version == version_before) after.timer_suppressed_at_version = after.version;
  }

  if (absl::Status s = producer_->BeginTransaction(); !s.ok()) return s;
  // Shared with the delivery callbacks, which an abort may still run later.
  struct Deliveries {
    std::mutex mutex;
    std::vector<kafka::Delivery> slots;
  };
  auto shared = std::make_shared<Deliveries>();
  shared->slots.resize(batch.events.size());
  for (size_t i = 0; i < batch.events.size(); ++i) {
    absl::Status queued = producer_->Produce(
        batch.events[i].record, [shared, i](const kafka::Delivery& d) {
          std::lock_guard<std::mutex> lock(shared->mutex);
          shared->slots[i] = d;
        });
    if (!queued.ok()) {
      producer_->AbortTransaction(options_.transaction_timeout).IgnoreError();
      return queued.code() == absl::StatusCode::kFailedPrecondition ? queued
                                                                     : absl::AbortedError(queued.message());
    }
  }
  absl::Status flushed = producer_->Flush(options_.transaction_timeout);
  std::vector<kafka::Delivery> deliveries;
  {
    std::lock_guard<std::mutex> lock(shared->mutex);
    deliveries = shared->slots;
  }
  for (const kafka::Delivery& delivery : deliveries) {
    if (flushed.ok() && !delivery.status.ok()) flushed = delivery.status;
  }
  if (!flushed.ok()) {
    if (absl::Status fatal = producer_->FatalError(); !fatal.ok()) return fatal;
    if (!producer_->AbortTransaction(options_.transaction_timeout).ok()) {
      return AsFatal(flushed);
    }
    return absl::AbortedError(flushed.message());
  }

  // Offsets are known now: into the aggregates and the replies.
  for (size_t i = 0; i < batch.events.size(); ++i) {
    WorkingAggregate& record = batch.working.at(batch.events[i].aggregate_id);
    record.last_event_offset = deliveries[i].offset;
    record.new_handled[batch.events[i].command_id].last_event_offset = deliveries[i].offset;
    events_next_offset_ = deliveries[i].offset + 1;
  }
  std::vector<kafka::OutgoingRecord> others = std::move(batch.dead_letters);
  for (Batch::PendingReply& pending : batch.replies) {
    if (pending.reply.code() == 0) {
      const WorkingAggregate& record = batch.working.at(pending.reply.aggregate_id());
      if (const HandledCommand* handled = record.FindHandled(pending.reply.command_id())) {
        pending.reply.set_aggregate_version(handled->version);
        pending.reply.set_last_event_offset(handled->last_event_offset);
      }
    }
    others.push_back({options_.topics.replies, pending.partition, pending.key,
                      pending.reply.SerializeAsString(), {}});
  }
  for (const kafka::OutgoingRecord& record : others) {
    absl::Status queued = producer_->Produce(record, [](const kafka::Delivery&) {});
    if (!queued.ok()) {
      if (queued.code() == absl::StatusCode::kFailedPrecondition) return queued;
      log::Error("reply or dead letter could not be queued; it is dropped",
                 {{"topic", record.topic}, {"error", queued.ToString()}});
    }
  }

  if (!commands.empty()) {
    absl::Status sent;
    for (int attempt = 0; attempt < 10; ++attempt) {
      sent = producer_->SendOffsetsToTransaction(
          {{options_.topics.commands, partition_, commands.back().offset + 1}}, commands_,
          options_.transaction_timeout);
      if (sent.code() != absl::StatusCode::kUnavailable) break;
    }
    if (!sent.ok()) {
      if (sent.code() == absl::StatusCode::kAborted &&
          producer_->AbortTransaction(options_.transaction_timeout).ok()) {
        return sent;
      }
      return AsFatal(sent);
    }
  }
  if (abandon_.load()) {
    producer_->AbortTransaction(options_.transaction_timeout).IgnoreError();
    return absl::CancelledError("partition lost; batch abandoned");
  }
  absl::Status committed;
  for (int attempt = 0; attempt < 10; ++attempt) {
    committed = producer_->CommitTransaction(options_.transaction_timeout);
    if (committed.code() != absl::StatusCode::kUnavailable) break;
  }
  if (committed.code() == absl::StatusCode::kAborted &&
      producer_->AbortTransaction(options_.transaction_timeout).ok()) {
    return committed;
  }
  if (!committed.ok()) return AsFatal(committed);
  return absl::OkStatus();
}

void PartitionWorker::MaybeSnapshot() {
  if (snapshot_pending_.empty()) {
    if (changed_since_snapshot_.empty()) return;
    absl::Time now = absl::Now();
    if (events_since_snapshot_ < options_.snapshot_every_events &&
        now - last_snapshot_ < options_.snapshot_interval) {
      return;
    }
    // A new snapshot: every aggregate changed since the last one, written a
    // chunk per call between batches so commands do not wait for all of it.
    // Each record holds a state at least as new as `snapshot_events_offset_`;
    // recovery skips events an aggregate's record already has (by version).
    last_snapshot_ = now;
    snapshot_pending_.assign(changed_since_snapshot_.begin(), changed_since_snapshot_.end());
    changed_since_snapshot_.clear();
    snapshot_events_offset_ = events_next_offset_;
    snapshot_written_ = 0;
    events_since_snapshot_ = 0;
  }

  std::vector<kafka::OutgoingRecord> records;
  size_t bytes = 0;
  while (!snapshot_pending_.empty() && bytes < kSnapshotChunkBytes) {
    const std::string id = std::move(snapshot_pending_.back());
    snapshot_pending_.pop_back();
    std::vector<std::string> values = SnapshotValues(state_.ToSnapshot(id), options_.snapshot_part_bytes);
    for (size_t index = 0; index < values.size(); ++index) {
      bytes += values[index].size();
      records.push_back({options_.topics.snapshots, partition_,
                         values.size() == 1 ? id : SnapshotPartKey(id, static_cast<int32_t>(index)),
                         std::move(values[index]), {}});
    }
  }
  snapshot_written_ += static_cast<int64_t>(records.size());
  bool complete = snapshot_pending_.empty();
  if (complete) {
    runtime::v1::SnapshotRecord marker;
    marker.mutable_marker()->set_partition(partition_);
    marker.mutable_marker()->set_events_offset(snapshot_events_offset_);
    *marker.mutable_marker()->mutable_taken_at() = ToProtoTime(clock_.Now());
    marker.mutable_marker()->set_aggregates_written(snapshot_written_);
    records.push_back({options_.topics.snapshots, partition_, SnapshotMarkerKey(partition_),
                       marker.SerializeAsString(), {}});
  }

  absl::Status status = producer_->BeginTransaction();
  for (size_t i = 0; status.ok() && i < records.size(); ++i) {
    status = producer_->Produce(records[i], [](const kafka::Delivery&) {});
  }
  if (status.ok()) status = producer_->CommitTransaction(options_.transaction_timeout);
  if (!status.ok()) {
    producer_->AbortTransaction(options_.transaction_timeout).IgnoreError();
    log::Warn("snapshot chunk not written; the snapshot starts over later",
              {{"partition", partition_}, {"error", status.ToString()}});
    // Its aggregates are still newer than the last complete snapshot.
    for (auto& record : records) changed_since_snapshot_.insert(record.key);
    for (auto& id : snapshot_pending_) changed_since_snapshot_.insert(id);
    changed_since_snapshot_.erase(SnapshotMarkerKey(partition_));
    snapshot_pending_.clear();
    return;
  }
  if (complete) {
    log::Info("snapshot written", {{"partition", partition_},
                                   {"aggregates", snapshot_written_},
                                   {"events_offset", snapshot_events_offset_}});
  }
}

}  // namespace helpline::es
