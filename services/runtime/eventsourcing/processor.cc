#include "services/runtime/eventsourcing/processor.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/server/log.h"

namespace helpline::es {

Processor::Processor(kafka::ClientConfig client, ProcessorOptions options,
                     const AggregateType& type, const Clock& clock, ProcessorMetrics* metrics)
    : client_(std::move(client)),
      options_(std::move(options)),
      type_(type),
      clock_(clock),
      metrics_(metrics) {}

Processor::~Processor() { Stop(); }

absl::Status Processor::Start() {
  absl::StatusOr<std::unique_ptr<kafka::Admin>> admin = kafka::Admin::Create(client_);
  if (!admin.ok()) return admin.status();
  std::map<std::string, int> partitions;
  for (const std::string& topic : {options_.topics.commands, options_.topics.events,
                                   options_.topics.snapshots, options_.topics.replies,
                                   options_.topics.deadletter}) {
    absl::StatusOr<int> count = (*admin)->PartitionCount(topic, absl::Seconds(30));
    if (!count.ok()) return count.status();
    partitions[topic] = *count;
  }
  if (partitions[options_.topics.commands] != partitions[options_.topics.events] ||
      partitions[options_.topics.commands] != partitions[options_.topics.snapshots]) {
    return absl::FailedPreconditionError(
        absl::StrCat("topics ", options_.topics.commands, ", ", options_.topics.events, " and ",
                     options_.topics.snapshots, " must have the same partition count"));
  }

  kafka::ConsumerOptions consumer_options;
  consumer_options.group_id = absl::StrCat(options_.service, "-processor");
  consumer_options.session_timeout = options_.session_timeout;
  if (options_.static_partitions.empty()) {
    consumer_options.on_rebalance = [this](const kafka::Rebalance& r) { OnRebalance(r); };
  }
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer =
      kafka::Consumer::Create(client_, consumer_options);
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);

  if (options_.static_partitions.empty()) {
    if (absl::Status s = consumer_->Subscribe({options_.topics.commands}); !s.ok()) return s;
  } else {
    std::vector<kafka::TopicPartitionOffset> assignment;
    for (int32_t partition : options_.static_partitions) {
      assignment.push_back({options_.topics.commands, partition, kafka::kOffsetBeginning});
    }
    if (absl::Status s = consumer_->Assign(assignment); !s.ok()) return s;
    for (int32_t partition : options_.static_partitions) StartWorker(partition);
    assignment_known_.store(true);
  }
  // Serves the group protocol and rebalances; the commands themselves are
  // read by the workers from their partitions' own queues.
  poller_ = std::thread([this] {
    while (!stopping_.load()) {
      absl::StatusOr<std::optional<kafka::Record>> polled = consumer_->Poll(absl::Milliseconds(100));
      if (!polled.ok()) {
        log::Warn("processor consumer", {{"error", polled.status().ToString()}});
      }
    }
  });
  return absl::OkStatus();
}

void Processor::Stop() {
  if (stopping_.exchange(true)) return;
  if (poller_.joinable()) poller_.join();
  {
    absl::MutexLock lock(&workers_mutex_);
    for (auto& [partition, worker] : workers_) worker->Stop(/*commit_in_flight=*/true);
    workers_.clear();
  }
  consumer_.reset();  // closes: leaves the group (the revocation finds no workers)
}

void Processor::StartWorker(int32_t partition) {
  std::unique_ptr<kafka::PartitionReader> reader =
      consumer_->ReadPartitionSeparately(options_.topics.commands, partition);
  auto worker = std::make_unique<PartitionWorker>(client_, options_, partition, type_, clock_,
                                                  *consumer_, std::move(reader), metrics_);
  worker->Start();
  absl::MutexLock lock(&workers_mutex_);
  workers_[partition] = std::move(worker);
}

void Processor::OnRebalance(const kafka::Rebalance& rebalance) {
  std::vector<int32_t> partitions;
  for (const auto& partition : rebalance.partitions) partitions.push_back(partition.partition);
  log::Info(rebalance.assigned ? "partitions assigned" : "partitions revoked",
            {{"partitions", partitions}, {"lost", rebalance.lost}});
  if (rebalance.assigned) {
    for (int32_t partition : partitions) StartWorker(partition);
    assignment_known_.store(true);
    return;
  }
  std::vector<std::unique_ptr<PartitionWorker>> leaving;
  {
    absl::MutexLock lock(&workers_mutex_);
    for (int32_t partition : partitions) {
      auto found = workers_.find(partition);
      if (found == workers_.end()) continue;
      leaving.push_back(std::move(found->second));
      workers_.erase(found);
    }
  }
  for (auto& worker : leaving) worker->Stop(/*commit_in_flight=*/!rebalance.lost);
}

std::vector<int32_t> Processor::OwnedPartitions() {
  absl::MutexLock lock(&workers_mutex_);
  std::vector<int32_t> owned;
  for (const auto& [partition, worker] : workers_) owned.push_back(partition);
  return owned;
}

bool Processor::Ready() {
  if (!assignment_known_.load()) return false;
  absl::MutexLock lock(&workers_mutex_);
  for (const auto& [partition, worker] : workers_) {
    if (!worker->ready()) return false;
  }
  return true;
}

std::string Processor::StateDigest(int32_t partition) {
  absl::MutexLock lock(&workers_mutex_);
  auto found = workers_.find(partition);
  return found == workers_.end() ? "" : found->second->StateDigest();
}

int64_t Processor::TimesFenced() {
  absl::MutexLock lock(&workers_mutex_);
  int64_t total = 0;
  for (const auto& [partition, worker] : workers_) total += worker->times_fenced();
  return total;
}

}  // namespace helpline::es
