#include "services/runtime/eventsourcing/processor.h"

#include <mutex>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/runtime/server/log.h"

namespace helpline::es {
namespace {

constexpr int kMaxBatchRetries = 5;

// Sending the offsets and committing are retried while the transaction
// coordinator times out, for this many transaction timeouts in all; then the
// transaction counts as failed and every partition is rebuilt with a new
// producer. After a broker restart librdkafka can keep a dead coordinator
// connection for minutes; a new producer finds the broker at once.
constexpr int kTransactionTimeoutsWhileUnavailable = 3;
// Marks a fatal error that is the coordinator's silence, not a fencing.
constexpr char kCoordinatorSilentPayload[] = "helpline.es/coordinator-silent";

// Anything that is not ABORTED ends the producer: FAILED_PRECONDITION, with
// the original's payload (fencing) when it already was.
absl::Status AsFatal(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kFailedPrecondition) return status;
  return absl::FailedPreconditionError(status.message());
}

std::vector<kafka::TopicPartitionOffset> OnTopic(const std::string& topic,
                                                 const std::vector<int32_t>& partitions) {
  std::vector<kafka::TopicPartitionOffset> out;
  for (int32_t partition : partitions) out.push_back({topic, partition, kafka::kOffsetBeginning});
  return out;
}

}  // namespace

Processor::Processor(kafka::ClientConfig client, ProcessorOptions options,
                     const AggregateType& type, const Clock& clock, ProcessorMetrics* metrics)
    : Processor(kafka::RdKafkaClients(std::move(client)), std::move(options), type, clock,
                metrics) {}

Processor::Processor(std::shared_ptr<kafka::ClientFactory> kafka, ProcessorOptions options,
                     const AggregateType& type, const Clock& clock, ProcessorMetrics* metrics)
    : kafka_(std::move(kafka)),
      options_(std::move(options)),
      type_(type),
      clock_(clock),
      metrics_(metrics),
      settings_{&type, options_.service, options_.topics, options_.max_event_bytes} {}

Processor::~Processor() { Stop(); }

absl::Status Processor::Start() {
  kafka::ConsumerOptions consumer_options;
  consumer_options.group_id = absl::StrCat(options_.service, "-processor");
  consumer_options.session_timeout = options_.session_timeout;
  // Commands are never written in transactions, so this reads them all the
  // same; and a partition it is given starts fetching from the settled
  // offset at once instead of waiting for a stable one, which a broker that
  // lost track of a transaction never gives (the rebuild asks for the
  // stable offsets itself, and seeks).
  consumer_options.read_committed = false;
  if (options_.static_partitions.empty()) {
    consumer_options.on_rebalance = [this](const kafka::Rebalance& r) { OnRebalance(r); };
  }
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer =
      kafka_->NewConsumer(consumer_options);
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);
  // The same group's offsets as a read_committed consumer asks for them:
  // waiting for a transaction still committing some. It never joins.
  kafka::ConsumerOptions stable_options;
  stable_options.group_id = consumer_options.group_id;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> stable = kafka_->NewConsumer(stable_options);
  if (!stable.ok()) return stable.status();
  stable_offsets_ = *std::move(stable);

  std::map<std::string, int> partitions;
  for (const std::string& topic : {options_.topics.commands, options_.topics.events,
                                   options_.topics.snapshots, options_.topics.replies,
                                   options_.topics.deadletter}) {
    absl::StatusOr<int> count = consumer_->PartitionCount(topic, absl::Seconds(30));
    if (!count.ok()) return count.status();
    partitions[topic] = *count;
  }
  if (partitions[options_.topics.commands] != partitions[options_.topics.events] ||
      partitions[options_.topics.commands] != partitions[options_.topics.snapshots]) {
    return absl::FailedPreconditionError(
        absl::StrCat("topics ", options_.topics.commands, ", ", options_.topics.events, " and ",
                     options_.topics.snapshots, " must have the same partition count"));
  }
  settings_.replies_partitions = partitions[options_.topics.replies];
  // Before any partition is read back: aborts what this replica's previous
  // run left open, so rebuilding does not wait for it.
  if (absl::Status s = StartProducer(); !s.ok()) return s;

  if (options_.static_partitions.empty()) {
    if (absl::Status s = consumer_->Subscribe({options_.topics.commands}); !s.ok()) return s;
  } else {
    if (absl::Status s = consumer_->Assign(OnTopic(options_.topics.commands,
                                                   options_.static_partitions));
        !s.ok()) {
      return s;
    }
    absl::MutexLock lock(&mutex_);
    Adopt(options_.static_partitions);
    assignment_known_ = true;
  }
  recovery_thread_ = std::thread([this] { RunRecoveries(); });
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Processor::Stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (recovery_thread_.joinable()) recovery_thread_.join();
  if (consumer_ != nullptr) consumer_->Close();  // leaves the group
  producer_.reset();
  consumer_.reset();
  stable_offsets_.reset();
}

absl::Status Processor::StartProducer() {
  producer_.reset();  // a fenced or failed producer is never reused
  kafka::ProducerOptions producer_options;
  producer_options.transactional_id =
      absl::StrCat(options_.service, "-processor-", options_.replica);
  producer_options.transaction_timeout = options_.transaction_timeout;
  producer_options.delivery_timeout = options_.transaction_timeout;
  // Flush and commit send at once whatever the linger; a long one keeps the
  // producer's threads from waking every millisecond.
  producer_options.linger = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
      kafka_->NewProducer(producer_options);
  if (!producer.ok()) return producer.status();
  absl::Status init;
  for (int attempt = 0; attempt < 30 && !stopping_.load(); ++attempt) {
    init = (*producer)->InitTransactions(options_.transaction_timeout);
    if (init.code() != absl::StatusCode::kUnavailable) break;
    // The coordinator is away, or still ending the previous holder's
    // transaction: nothing is decided meanwhile, so it is said.
    log::Warn("transactional id not ready yet; retrying",
              {{"transactional_id", producer_options.transactional_id},
               {"attempt", attempt + 1},
               {"error", init.ToString()}});
  }
  if (!init.ok()) return init;
  if (absl::Status warm = (*producer)->WarmUp({options_.topics.events, options_.topics.replies,
                                               options_.topics.snapshots, options_.topics.deadletter},
                                              absl::Seconds(10));
      !warm.ok()) {
    return warm;
  }
  producer_ = *std::move(producer);
  return absl::OkStatus();
}

void Processor::OnRebalance(const kafka::Rebalance& rebalance) {
  std::vector<int32_t> partitions;
  for (const auto& partition : rebalance.partitions) partitions.push_back(partition.partition);
  log::Info(rebalance.assigned ? "partitions assigned" : "partitions revoked",
            {{"partitions", partitions}, {"lost", rebalance.lost}});
  absl::MutexLock lock(&mutex_);
  if (rebalance.assigned) {
    Adopt(partitions);
    assignment_known_ = true;
  } else {
    // Revoked or lost alike: nothing is in flight while the consumer polls,
    // and what was collected for them is dropped (their new owner reads it).
    Release(partitions);
  }
}

void Processor::Adopt(const std::vector<int32_t>& partitions) {
  if (partitions.empty()) return;
  consumer_->Pause(OnTopic(options_.topics.commands, partitions)).IgnoreError();
  std::vector<Recovery> recoveries;
  for (int32_t partition : partitions) {
    // Adopted again after a fatal error, it keeps waiting since it last
    // decided: a replica failing over and over shows as stalled.
    const bool arriving = !partitions_.contains(partition);
    Partition& owned = partitions_[partition];
    owned.state.reset();
    owned.snapshots.reset();
    owned.ownership = next_ownership_++;
    owned.adopted_at = absl::Now();
    owned.next_command_offset = -1;
    if (arriving) {
      owned.undecided_since = absl::Now();
      owned.lag = PartitionLag(absl::Now());
    }
    recoveries.push_back({partition, owned.ownership});
  }
  absl::MutexLock lock(&recovery_mutex_);
  to_recover_.insert(to_recover_.end(), recoveries.begin(), recoveries.end());
}

void Processor::Release(const std::vector<int32_t>& partitions) {
  for (int32_t partition : partitions) {
    partitions_.erase(partition);
    if (metrics_ != nullptr) metrics_->SetCommandsLag(partition, 0, absl::ZeroDuration());
  }
}

void Processor::RunRecoveries() {
  while (!stopping_.load()) {
    std::vector<Recovery> round;
    {
      absl::MutexLock lock(&recovery_mutex_);
      auto waiting = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(recovery_mutex_) {
        return !to_recover_.empty();
      };
      recovery_mutex_.AwaitWithTimeout(absl::Condition(&waiting), absl::Milliseconds(100));
      round.swap(to_recover_);
    }
    // A partition that left and came back while waiting: its latest ownership.
    std::map<int32_t, Recovery> latest;
    for (const Recovery& recovery : round) {
      Recovery& kept = latest[recovery.partition];
      if (recovery.ownership >= kept.ownership) kept = recovery;
    }
    round.clear();
    for (const auto& [partition, recovery] : latest) round.push_back(recovery);
    if (round.empty()) continue;
    auto still_owned = [this](const Recovery& recovery) {
      absl::MutexLock lock(&mutex_);
      auto found = partitions_.find(recovery.partition);
      return found != partitions_.end() && found->second.ownership == recovery.ownership;
    };
    auto cancelled = [&] {
      if (stopping_.load()) return true;
      for (const Recovery& recovery : round) {
        if (still_owned(recovery)) return false;
      }
      return true;
    };
    std::vector<int32_t> partitions;
    for (const Recovery& recovery : round) partitions.push_back(recovery.partition);
    absl::Time started = absl::Now();
    // The committed offsets first: their lookup waits for a previous
    // owner's open transaction to end, so the events read next include
    // every event that transaction committed along with these offsets.
    absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> committed =
        CommittedOffsets(OnTopic(options_.topics.commands, partitions));
    // Where the group has no offset yet: the partition's first command (an
    // explicit offset; a logical one costs the consumer an extra lookup).
    for (size_t i = 0; committed.ok() && i < committed->size(); ++i) {
      kafka::TopicPartitionOffset& each = (*committed)[i];
      if (each.offset >= 0) continue;
      absl::StatusOr<std::pair<int64_t, int64_t>> watermarks =
          consumer_->WatermarkOffsets(each.topic, each.partition, absl::Seconds(10));
      if (!watermarks.ok()) {
        committed = watermarks.status();
        break;
      }
      each.offset = watermarks->first;
    }
    absl::StatusOr<std::vector<RecoveredPartition>> rebuilt =
        committed.ok() ? RecoverPartitions(*kafka_, options_.topics, type_, options_.dedupe_window,
                                           partitions, cancelled)
                       : committed.status();
    if (!rebuilt.ok()) {
      if (cancelled()) {
        offsets_unstable_since_.reset();  // the next partitions wait their own patience
        continue;
      }
      log::Warn("rebuilding partitions failed; retrying",
                {{"partitions", partitions}, {"error", rebuilt.status().ToString()}});
      absl::SleepFor(absl::Seconds(1));
      absl::MutexLock lock(&recovery_mutex_);
      for (const Recovery& recovery : round) to_recover_.push_back(recovery);
      continue;
    }
    std::vector<Rebuilt> done;
    for (size_t i = 0; i < round.size(); ++i) {
      // Past the group's offset only when the broker never settled them.
      const int64_t from = offsets_fell_back_
                               ? std::max((*committed)[i].offset, (*rebuilt)[i].commands_checkpoint)
                               : (*committed)[i].offset;
      Rebuilt each{round[i], std::move((*rebuilt)[i]), from, absl::Now() - started};
      done.push_back(std::move(each));
    }
    absl::MutexLock lock(&recovery_mutex_);
    for (Rebuilt& each : done) recovered_.push_back(std::move(each));
  }
}

absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> Processor::CommittedOffsets(
    const std::vector<kafka::TopicPartitionOffset>& partitions) {
  const absl::Duration patience =
      options_.unsettled_offsets_patience > absl::ZeroDuration()
          ? options_.unsettled_offsets_patience
          : std::max(absl::Seconds(30), 3 * options_.transaction_timeout);
  // Several lookups within the patience, each shorter than it.
  const absl::Duration lookup = std::min(absl::Seconds(10), patience / 3);
  offsets_fell_back_ = false;
  const absl::Time asked_at = absl::Now();
  // Polled for its broker watch (a client that lost every broker in a
  // restart finds them again there); it is assigned nothing, so gets nothing.
  stable_offsets_->Poll(absl::ZeroDuration()).IgnoreError();
  absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> committed =
      stable_offsets_->Committed(partitions, lookup);
  if (committed.ok()) {
    offsets_unstable_since_.reset();
    return committed;
  }
  if (!offsets_unstable_since_) offsets_unstable_since_ = asked_at;
  // Longer than any transaction may stay open, the group's offsets still
  // wait for one: the broker lost track of its end (seen after a broker
  // restart: the transaction complete, its offsets never released). The
  // settled offsets stand, raised to the last checkpoint (written with
  // every batch in which a command left no event): of the commands after
  // that, those decided left events, read next and answered as retries.
  const absl::Duration waited = absl::Now() - *offsets_unstable_since_;
  if (waited < patience) return committed;
  log::Warn("the group's committed offsets stay unsettled; rebuilding from the settled ones",
            {{"error", committed.status().ToString()},
             {"seconds", absl::ToInt64Seconds(waited)}});
  committed = consumer_->Committed(partitions, lookup);
  if (committed.ok()) {
    offsets_unstable_since_.reset();
    offsets_fell_back_ = true;
    if (metrics_ != nullptr) metrics_->CountUnsettledOffsetsPassed();
  }
  return committed;
}

void Processor::InstallRecovered() {
  std::vector<Rebuilt> done;
  {
    absl::MutexLock lock(&recovery_mutex_);
    done.swap(recovered_);
  }
  for (Rebuilt& each : done) {
    const int32_t partition = each.recovery.partition;
    {
      absl::MutexLock lock(&mutex_);
      auto found = partitions_.find(partition);
      if (found == partitions_.end() || found->second.ownership != each.recovery.ownership) continue;
    }
    // Only this thread adds or removes partitions: the lock is needed for
    // the readers, not across the seek.
    int64_t offset = each.commands_offset;
    absl::Status sought =
        consumer_->Seek({options_.topics.commands, partition, offset}, absl::Seconds(10));
    if (!sought.ok()) {
      log::Warn("partition rebuilt but not positioned; rebuilding it again",
                {{"partition", partition}, {"error", sought.ToString()}});
      absl::MutexLock lock(&mutex_);
      Adopt({partition});
      continue;
    }
    RecoveredPartition& rebuilt = each.partition;
    size_t aggregates = rebuilt.state->size();
    {
      absl::MutexLock lock(&mutex_);
      Partition& owned = partitions_.at(partition);
      owned.state = std::move(rebuilt.state);
      owned.snapshots = std::make_unique<SnapshotSchedule>(options_.topics.snapshots, partition,
                                                           options_.snapshots);
      owned.snapshots->Reset(absl::Now(), rebuilt.changed, rebuilt.events_replayed);
      owned.events_next_offset = rebuilt.events_next_offset;
      owned.next_command_offset = each.commands_offset;
    }
    consumer_->Resume(OnTopic(options_.topics.commands, {partition})).IgnoreError();
    if (metrics_ != nullptr) {
      metrics_->ObserveRecovery(absl::ToDoubleSeconds(each.took), rebuilt.events_replayed);
    }
    log::Info("partition ready", {{"partition", partition},
                                  {"aggregates", aggregates},
                                  {"events_replayed", rebuilt.events_replayed},
                                  {"snapshot_events_offset", rebuilt.snapshot_events_offset},
                                  {"commands_offset", offset},
                                  {"ms", absl::ToInt64Milliseconds(each.took)}});
  }
}

void Processor::Run() {
  while (!stopping_.load()) {
    if (producer_ == nullptr) {
      if (absl::Status started = StartProducer(); !started.ok()) {
        log::Warn("transactional producer not ready; retrying", {{"error", started.ToString()}});
        absl::SleepFor(absl::Seconds(1));
        continue;
      }
      // Only now that this replica's transactional id is fenced against
      // whoever held it can the log be read back as final.
      absl::MutexLock lock(&mutex_);
      std::vector<int32_t> owned;
      for (const auto& [partition, state] : partitions_) owned.push_back(partition);
      Adopt(owned);
    }
    InstallRecovered();
    std::map<int32_t, std::vector<kafka::Record>> commands = CollectCommands();
    absl::Status result = RunBatch(commands);
    if (result.ok()) result = WriteSnapshotChunks();
    if (!result.ok()) RecoverFromFatalError(result);
  }
}

void Processor::RecoverFromFatalError(const absl::Status& error) {
  if (metrics_ != nullptr) {
    metrics_->CountTransactionFailure(
        error.GetPayload(kCoordinatorSilentPayload) ? "coordinator_silent" : "fatal");
  }
  bool fenced = kafka::IsFenced(error) || (producer_ != nullptr && kafka::IsFenced(producer_->FatalError()));
  producer_.reset();
  {
    // Nothing is decided until the partitions are rebuilt with a new
    // producer (Run); a rebuild in progress is of no use any more.
    absl::MutexLock lock(&mutex_);
    std::vector<int32_t> owned;
    for (auto& [partition, owned_partition] : partitions_) {
      owned_partition.state.reset();
      owned_partition.ownership = next_ownership_++;
      owned.push_back(partition);
    }
    if (!owned.empty()) consumer_->Pause(OnTopic(options_.topics.commands, owned)).IgnoreError();
  }
  if (fenced) {
    // A newer producer with this replica's transactional id (a second
    // replica given the same name, or this replica's successor), or the
    // broker aborting a transaction that outlived its timeout (a broker
    // restart). Wait a little before taking the partitions back, so that
    // a same-named replica is not fenced back and forth at full speed.
    ++times_fenced_;
    log::Warn("fenced; taking the partitions back shortly",
              {{"backoff_ms", absl::ToInt64Milliseconds(options_.fencing_backoff)}});
    absl::Time until = absl::Now() + options_.fencing_backoff;
    while (!stopping_.load() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
  } else {
    log::Warn("transaction failed; rebuilding every partition from the log",
              {{"error", error.ToString()}});
  }
}

absl::Duration Processor::IdleWait() {
  std::optional<absl::Time> next;
  {
    absl::MutexLock lock(&mutex_);
    for (const auto& [partition, owned] : partitions_) {
      if (owned.state == nullptr) continue;
      std::optional<absl::Time> timer = owned.state->NextTimer();
      if (timer && (!next || *timer < *next)) next = timer;
    }
  }
  if (!next.has_value()) return options_.idle_poll;
  absl::Duration until = (*next - clock_.Now()) / options_.clock_rate;
  return std::clamp(until, absl::ZeroDuration(), options_.idle_poll);
}

std::map<int32_t, std::vector<kafka::Record>> Processor::CollectCommands() {
  std::map<int32_t, std::vector<kafka::Record>> commands;
  int count = 0;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration wait = IdleWait();
  while (count < options_.max_batch_commands && !stopping_.load()) {
    absl::StatusOr<std::optional<kafka::Record>> record = consumer_->Poll(wait);
    if (!record.ok()) {
      log::Warn("reading commands", {{"error", record.status().ToString()}});
      break;
    }
    if (!record->has_value()) {
      if (count == 0 || absl::Now() >= deadline) break;
    } else {
      commands[(*record)->partition].push_back(std::move(**record));
      if (++count == 1) deadline = absl::Now() + options_.max_batch_wait;
    }
    wait = std::max(absl::ZeroDuration(), deadline - absl::Now());
  }
  // A partition still being rebuilt (a record fetched before it was paused)
  // or taken away while collecting: its new position or owner reads these.
  absl::MutexLock lock(&mutex_);
  for (auto it = commands.begin(); it != commands.end();) {
    auto owned = partitions_.find(it->first);
    it = owned == partitions_.end() || owned->second.state == nullptr ? commands.erase(it)
                                                                       : std::next(it);
  }
  return commands;
}

absl::Status Processor::RunBatch(std::map<int32_t, std::vector<kafka::Record>>& commands) {
  for (int attempt = 0;; ++attempt) {
    absl::Time started = absl::Now();
    absl::Time now = clock_.Now();
    std::map<int32_t, std::unique_ptr<PartitionBatch>> batches;
    bool writes = false;
    {
      absl::MutexLock lock(&mutex_);
      for (auto& [partition, owned] : partitions_) {
        if (owned.state == nullptr) continue;
        auto found = commands.find(partition);
        bool has_commands = found != commands.end() && !found->second.empty();
        std::optional<absl::Time> timer = owned.state->NextTimer();
        if (!has_commands && !(timer && *timer <= now)) continue;
        auto batch = std::make_unique<PartitionBatch>(settings_, partition, *owned.state);
        if (has_commands) {
          for (const kafka::Record& record : found->second) batch->Decide(record, now);
        }
        batch->FireDueTimers(now, static_cast<size_t>(options_.max_batch_commands));
        writes = writes || has_commands || batch->writes();
        batches[partition] = std::move(batch);
      }
    }
    if (batches.empty()) return absl::OkStatus();
    for (const auto& [partition, batch] : batches) {
      if (batch->misaddressed_replies() > 0) RefreshRepliesPartitions();
    }
    absl::Status status = writes ? Transact(batches, commands) : absl::OkStatus();
    if (status.ok()) {
      int decided = 0;
      absl::MutexLock lock(&mutex_);
      for (auto& [partition, batch] : batches) {
        Partition& owned = partitions_.at(partition);
        std::set<std::string> changed;
        batch->Commit(changed);
        owned.snapshots->Changed(changed, static_cast<int64_t>(batch->event_count()));
        if (batch->events_next_offset() >= 0) owned.events_next_offset = batch->events_next_offset();
        auto found = commands.find(partition);
        if (found != commands.end() && !found->second.empty()) {
          owned.next_command_offset = found->second.back().offset + 1;
          owned.last_command_written = found->second.back().timestamp;
          owned.undecided_since = absl::Now();
        }
        decided += static_cast<int>(batch->result_counts().size());
        if (metrics_ != nullptr) {
          for (const std::string& result : batch->result_counts()) metrics_->CountCommand(result);
        }
      }
      if (metrics_ != nullptr && decided > 0) {
        metrics_->ObserveTransaction(absl::ToDoubleSeconds(absl::Now() - started), decided);
      }
      return status;
    }
    if (status.code() != absl::StatusCode::kAborted || attempt >= kMaxBatchRetries) return status;
    // The group no longer counts this member in: no retry can commit;
    // the partitions are rebuilt once the consumer learns where it stands.
    if (kafka::LostGroupMembership(status)) return AsFatal(status);
    if (metrics_ != nullptr) metrics_->CountTransactionFailure("aborted");
    log::Warn("transaction aborted; deciding the batch again",
              {{"attempt", attempt + 1}, {"error", status.ToString()}});
    absl::SleepFor(absl::Milliseconds(50) * (attempt + 1));
  }
}

absl::StatusOr<std::shared_ptr<Processor::Deliveries>> Processor::QueueAll(
    const std::vector<kafka::OutgoingRecord>& records) {
  auto deliveries = std::make_shared<Deliveries>();
  deliveries->slots.resize(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    absl::Status queued = producer_->Produce(records[i], [deliveries, i](const kafka::Delivery& d) {
      std::lock_guard<std::mutex> lock(deliveries->mutex);
      deliveries->slots[i] = d;
    });
    if (!queued.ok()) return AbortAfter(queued);
  }
  return deliveries;
}

absl::Status Processor::ProduceAll(const std::vector<kafka::OutgoingRecord>& records,
                                   std::vector<kafka::Delivery>* deliveries) {
  absl::StatusOr<std::shared_ptr<Deliveries>> shared = QueueAll(records);
  if (!shared.ok()) return shared.status();
  absl::Status flushed = producer_->Flush(options_.transaction_timeout);
  {
    std::lock_guard<std::mutex> lock((*shared)->mutex);
    *deliveries = (*shared)->slots;
  }
  // The cause first: a record the broker refused purges the others.
  for (const kafka::Delivery& delivery : *deliveries) {
    if (!delivery.status.ok() && (flushed.ok() || absl::StrContains(flushed.message(), "Purged"))) {
      flushed = delivery.status;
    }
  }
  if (flushed.ok()) return flushed;
  if (absl::Status fatal = producer_->FatalError(); !fatal.ok()) return fatal;
  if (!producer_->AbortTransaction(options_.transaction_timeout).ok()) return AsFatal(flushed);
  return absl::AbortedError(flushed.message());
}

void Processor::RefreshRepliesPartitions() {
  if (absl::Now() - replies_checked_at_ < absl::Seconds(5)) return;
  replies_checked_at_ = absl::Now();
  absl::StatusOr<int> count = consumer_->PartitionCount(options_.topics.replies, absl::Seconds(5));
  if (count.ok() && *count > settings_.replies_partitions) {
    log::Info("the replies topic has more partitions", {{"partitions", *count}});
    settings_.replies_partitions = *count;
  }
}

std::vector<kafka::TopicPartitionOffset> Processor::ConsumedOffsets(
    const std::set<int32_t>& written, const std::map<int32_t, std::vector<kafka::Record>>& commands) {
  std::vector<kafka::TopicPartitionOffset> consumed;
  absl::MutexLock lock(&mutex_);
  for (const auto& [partition, owned] : partitions_) {
    if (owned.state == nullptr || !written.contains(partition)) continue;
    auto found = commands.find(partition);
    int64_t next = found != commands.end() && !found->second.empty()
                       ? found->second.back().offset + 1
                       : owned.next_command_offset;
    if (next >= 0) consumed.push_back({options_.topics.commands, partition, next});
  }
  return consumed;
}

absl::Status Processor::CommitTransaction(const std::vector<kafka::TopicPartitionOffset>& offsets) {
  const absl::Time give_up =
      absl::Now() + kTransactionTimeoutsWhileUnavailable * options_.transaction_timeout;
  auto fatal = [](const absl::Status& status) {
    absl::Status out = AsFatal(status);
    if (status.code() == absl::StatusCode::kUnavailable) {
      out.SetPayload(kCoordinatorSilentPayload, absl::Cord("1"));
    }
    return out;
  };
  if (!offsets.empty()) {
    absl::Status sent;
    do {
      sent = producer_->SendOffsetsToTransaction(offsets, *consumer_, options_.transaction_timeout);
    } while (sent.code() == absl::StatusCode::kUnavailable && absl::Now() < give_up);
    if (!sent.ok()) {
      if (sent.code() == absl::StatusCode::kAborted &&
          producer_->AbortTransaction(options_.transaction_timeout).ok()) {
        return sent;
      }
      return fatal(sent);
    }
  }
  absl::Status committed;
  do {
    committed = producer_->CommitTransaction(options_.transaction_timeout);
  } while (committed.code() == absl::StatusCode::kUnavailable && absl::Now() < give_up);
  if (committed.code() == absl::StatusCode::kAborted &&
      producer_->AbortTransaction(options_.transaction_timeout).ok()) {
    return committed;
  }
  if (!committed.ok()) return fatal(committed);
  return absl::OkStatus();
}

absl::Status Processor::Transact(std::map<int32_t, std::unique_ptr<PartitionBatch>>& batches,
                                 const std::map<int32_t, std::vector<kafka::Record>>& commands) {
  if (absl::Status s = producer_->BeginTransaction(); !s.ok()) return s;
  // Events, replies and dead letters in one round: the replies need no
  // event offsets (fronts wait for aggregate versions).
  std::vector<kafka::OutgoingRecord> events;
  std::vector<kafka::OutgoingRecord> others;
  for (auto& [partition, batch] : batches) {
    std::vector<kafka::OutgoingRecord> own = batch->TakeEvents();
    events.insert(events.end(), std::make_move_iterator(own.begin()),
                  std::make_move_iterator(own.end()));
    std::vector<kafka::OutgoingRecord> replies = batch->Replies();
    others.insert(others.end(), std::make_move_iterator(replies.begin()),
                  std::make_move_iterator(replies.end()));
    auto decided = commands.find(partition);
    if (batch->left_a_command_without_events() && decided != commands.end() &&
        !decided->second.empty()) {
      runtime::v1::SnapshotRecord checkpoint;
      checkpoint.mutable_checkpoint()->set_partition(partition);
      checkpoint.mutable_checkpoint()->set_commands_offset(decided->second.back().offset + 1);
      others.push_back({options_.topics.snapshots, partition,
                        absl::StrCat("commands-checkpoint:", partition),
                        checkpoint.SerializeAsString(), {}});
    }
  }
  absl::StatusOr<std::shared_ptr<Deliveries>> event_deliveries = QueueAll(events);
  if (!event_deliveries.ok()) return event_deliveries.status();
  if (absl::StatusOr<std::shared_ptr<Deliveries>> queued = QueueAll(others); !queued.ok()) {
    return queued.status();
  }
  // Commit waits for every record; a record that failed fails the commit.
  std::set<int32_t> written;
  for (const auto& [partition, batch] : batches) written.insert(partition);
  if (absl::Status committed = CommitTransaction(ConsumedOffsets(written, commands));
      !committed.ok()) {
    return committed;
  }
  std::vector<int64_t> event_offsets;
  {
    std::lock_guard<std::mutex> lock((*event_deliveries)->mutex);
    for (const kafka::Delivery& delivery : (*event_deliveries)->slots) {
      event_offsets.push_back(delivery.offset);
    }
  }
  size_t next = 0;
  for (auto& [partition, batch] : batches) {
    std::vector<int64_t> own(event_offsets.begin() + static_cast<ptrdiff_t>(next),
                             event_offsets.begin() + static_cast<ptrdiff_t>(next + batch->event_count()));
    next += batch->event_count();
    batch->RecordOffsets(own);
  }
  return absl::OkStatus();
}

absl::Status Processor::AbortAfter(const absl::Status& failed) {
  producer_->AbortTransaction(options_.transaction_timeout).IgnoreError();
  return failed.code() == absl::StatusCode::kFailedPrecondition ? failed
                                                                 : absl::AbortedError(failed.message());
}

absl::Status Processor::WriteSnapshotChunks() {
  std::vector<std::pair<int32_t, SnapshotSchedule::Chunk>> chunks;
  std::vector<kafka::OutgoingRecord> records;
  {
    absl::MutexLock lock(&mutex_);
    for (auto& [partition, owned] : partitions_) {
      if (owned.state == nullptr) continue;
      SnapshotSchedule::Chunk chunk = owned.snapshots->NextChunk(
          *owned.state, owned.events_next_offset, absl::Now(), clock_.Now());
      if (chunk.records.empty()) continue;
      records.insert(records.end(), chunk.records.begin(), chunk.records.end());
      chunks.emplace_back(partition, std::move(chunk));
    }
  }
  if (chunks.empty()) return absl::OkStatus();
  absl::Status status = producer_->BeginTransaction();
  std::vector<kafka::Delivery> deliveries;
  if (status.ok()) status = ProduceAll(records, &deliveries);
  std::set<int32_t> written;
  for (const auto& [partition, chunk] : chunks) written.insert(partition);
  if (status.ok()) status = CommitTransaction(ConsumedOffsets(written, {}));
  if (!status.ok()) {
    log::Warn("snapshot chunk not written; the snapshot starts over later",
              {{"error", status.ToString()}});
    absl::MutexLock lock(&mutex_);
    for (const auto& [partition, chunk] : chunks) {
      auto owned = partitions_.find(partition);
      if (owned != partitions_.end() && owned->second.snapshots != nullptr) {
        owned->second.snapshots->Failed(chunk, absl::Now());
      }
    }
    // Aborted: tried again later; unless the group no longer counts this
    // replica in, which only rebuilding after the next poll can answer.
    return status.code() == absl::StatusCode::kAborted && !kafka::LostGroupMembership(status)
               ? absl::OkStatus()
               : status;
  }
  for (const auto& [partition, chunk] : chunks) {
    if (chunk.completes) log::Info("snapshot written", {{"partition", partition}});
  }
  return absl::OkStatus();
}

void Processor::ReportLag() {
  if (metrics_ == nullptr || consumer_ == nullptr) return;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mutex_);
  for (auto& [partition, owned] : partitions_) {
    if (owned.next_command_offset < 0) {
      // Being rebuilt: nothing of it is decided meanwhile.
      metrics_->SetCommandsLagSeconds(partition, now - owned.undecided_since);
      continue;
    }
    std::optional<int64_t> high = consumer_->CachedHighWatermark(options_.topics.commands, partition);
    if (high) {
      PartitionLag::Lag lag =
          owned.lag.Update(owned.next_command_offset, *high, owned.last_command_written, now);
      if (lag.records == 0) owned.undecided_since = now;
      metrics_->SetCommandsLag(partition, lag.records, lag.behind);
    }
  }
}

std::vector<int32_t> Processor::OwnedPartitions() {
  absl::MutexLock lock(&mutex_);
  std::vector<int32_t> owned;
  for (const auto& [partition, state] : partitions_) owned.push_back(partition);
  return owned;
}

bool Processor::Ready() {
  absl::MutexLock lock(&mutex_);
  if (!assignment_known_) return false;
  for (const auto& [partition, owned] : partitions_) {
    if (owned.state == nullptr) return false;
  }
  was_ready_ = true;
  return true;
}

bool Processor::InService() {
  if (Ready()) return true;
  absl::MutexLock lock(&mutex_);
  if (!was_ready_) return false;
  const absl::Time now = absl::Now();
  for (const auto& [partition, owned] : partitions_) {
    if (owned.state == nullptr && now - owned.adopted_at > options_.rebuild_grace) return false;
  }
  return true;
}

std::string Processor::StateDigest(int32_t partition) {
  absl::MutexLock lock(&mutex_);
  auto found = partitions_.find(partition);
  return found == partitions_.end() || found->second.state == nullptr ? ""
                                                                      : found->second.state->Digest();
}

}  // namespace helpline::es
