#include "services/runtime/kafka/testing/fake_kafka.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace helpline::kafka::testing {
namespace {

using TopicPartition = std::pair<std::string, int32_t>;

constexpr int64_t kNoOffset = -1001;

struct Entry {
  Record record;
  bool marker = false;      // a transaction's commit or abort marker
  int64_t transaction = 0;  // 0: written outside a transaction
};

enum class Outcome { kOpen, kCommitted, kAborted };

struct Transaction {
  std::string transactional_id;
  Outcome outcome = Outcome::kOpen;
  absl::Time started;
  absl::Duration timeout;
  std::set<TopicPartition> written;
  // Consumer offsets sent with it, by group.
  std::map<std::string, std::map<TopicPartition, int64_t>> offsets;
};

struct Member {
  std::vector<std::string> topics;
  std::set<TopicPartition> owned;
  // Closed, or expelled and not yet back (FakeKafka::ExpelMembers).
  bool left = false;
  // Expelled: its next Poll loses what it owned and joins again.
  bool expelled = false;
  // To be expelled when it next sends offsets with a transaction.
  bool expel_at_next_offsets = false;
};

struct Group {
  std::map<TopicPartition, int64_t> committed;
  // Committed transactions' offsets are never settled from now on
  // (FakeKafka::StrandOffsets): they stay in flight for good.
  bool strand_offsets = false;
  std::set<TopicPartition> stranded;
  std::vector<Member*> members;  // in the order they joined
};

}  // namespace

struct FakeKafka::State {
  absl::Mutex mutex;
  // Signalled on every change a waiting Poll or lookup may care about.
  absl::CondVar changed;
  std::map<std::string, std::vector<std::vector<Entry>>> topics ABSL_GUARDED_BY(mutex);
  std::map<int64_t, Transaction> transactions ABSL_GUARDED_BY(mutex);
  int64_t next_transaction ABSL_GUARDED_BY(mutex) = 1;
  std::map<std::string, int64_t> epochs ABSL_GUARDED_BY(mutex);  // by transactional id
  std::map<std::string, int64_t> open_by_id ABSL_GUARDED_BY(mutex);
  std::map<std::string, Group> groups ABSL_GUARDED_BY(mutex);
  int failing_commits ABSL_GUARDED_BY(mutex) = 0;
  absl::Status commit_error ABSL_GUARDED_BY(mutex);
  int64_t aborted_count ABSL_GUARDED_BY(mutex) = 0;

  std::vector<Entry>* Log(const TopicPartition& tp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    auto topic = topics.find(tp.first);
    if (topic == topics.end() || tp.second < 0 ||
        tp.second >= static_cast<int32_t>(topic->second.size())) {
      return nullptr;
    }
    return &topic->second[static_cast<size_t>(tp.second)];
  }

  bool IsOpen(int64_t transaction) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    return transaction != 0 && transactions[transaction].outcome == Outcome::kOpen;
  }

  // Marks the transaction's end in every partition it wrote; a commit also
  // commits the offsets sent with it.
  void End(int64_t id, bool commit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    Transaction& transaction = transactions[id];
    if (transaction.outcome != Outcome::kOpen) return;
    transaction.outcome = commit ? Outcome::kCommitted : Outcome::kAborted;
    for (const TopicPartition& tp : transaction.written) {
      std::vector<Entry>& log = *Log(tp);
      Entry marker;
      marker.record = {tp.first, tp.second, static_cast<int64_t>(log.size())};
      marker.marker = true;
      marker.transaction = id;
      log.push_back(std::move(marker));
    }
    if (commit) {
      for (const auto& [group, offsets] : transaction.offsets) {
        Group& of = groups[group];
        for (const auto& [tp, offset] : offsets) {
          if (of.strand_offsets) {
            of.stranded.insert(tp);
          } else {
            of.committed[tp] = offset;
          }
        }
      }
    }
    auto open = open_by_id.find(transaction.transactional_id);
    if (open != open_by_id.end() && open->second == id) open_by_id.erase(open);
    if (!commit) ++aborted_count;
    changed.SignalAll();
  }

  // The broker's timeout: aborts a transaction open too long and fences its
  // producer.
  void ExpireTransactions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    const absl::Time now = absl::Now();
    std::vector<std::pair<std::string, int64_t>> expired;
    for (const auto& [id, transaction] : open_by_id) {
      const Transaction& open = transactions[transaction];
      if (now - open.started > open.timeout) expired.emplace_back(id, transaction);
    }
    for (const auto& [id, transaction] : expired) {
      End(transaction, /*commit=*/false);
      ++epochs[id];
    }
  }

  bool OffsetInFlight(const std::string& group, const TopicPartition& tp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    if (groups[group].stranded.contains(tp)) return true;
    for (const auto& [id, transaction] : open_by_id) {
      auto offsets = transactions[transaction].offsets.find(group);
      if (offsets != transactions[transaction].offsets.end() && offsets->second.contains(tp)) {
        return true;
      }
    }
    return false;
  }

  // The partitions the group gives `member` now.
  std::set<TopicPartition> Target(const std::string& group, const Member* member)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    const std::vector<Member*>& members = groups[group].members;
    std::vector<TopicPartition> partitions;
    for (const std::string& topic : member->topics) {
      auto found = topics.find(topic);
      if (found == topics.end()) continue;
      for (size_t p = 0; p < found->second.size(); ++p) {
        partitions.emplace_back(topic, static_cast<int32_t>(p));
      }
    }
    size_t index = 0;
    for (; index < members.size() && members[index] != member; ++index) {
    }
    std::set<TopicPartition> target;
    for (size_t i = 0; i < partitions.size(); ++i) {
      if (i % members.size() == index) target.insert(partitions[i]);
    }
    return target;
  }

  void Expel(const std::string& group, Member* member) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    std::vector<Member*>& members = groups[group].members;
    auto found = std::find(members.begin(), members.end(), member);
    if (found == members.end()) return;
    members.erase(found);
    member->owned.clear();
    member->left = true;
    member->expelled = true;
    member->expel_at_next_offsets = false;
    changed.SignalAll();
  }

  bool OwnedByAnother(const std::string& group, const Member* member, const TopicPartition& tp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    for (const Member* other : groups[group].members) {
      if (other != member && other->owned.contains(tp)) return true;
    }
    return false;
  }
};

namespace {

using State = FakeKafka::State;

std::vector<TopicPartitionOffset> ToList(const std::set<TopicPartition>& partitions) {
  std::vector<TopicPartitionOffset> out;
  for (const auto& [topic, partition] : partitions) out.push_back({topic, partition, kNoOffset});
  return out;
}

class FakeConsumer final : public Consumer {
 public:
  FakeConsumer(std::shared_ptr<State> state, ConsumerOptions options)
      : state_(std::move(state)), options_(std::move(options)) {}
  ~FakeConsumer() override { Close(); }

  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override {
    absl::MutexLock lock(&state_->mutex);
    assigned_.clear();
    return AddLocked(partitions);
  }
  absl::Status IncrementalAssign(const std::vector<TopicPartitionOffset>& partitions) override {
    absl::MutexLock lock(&state_->mutex);
    return AddLocked(partitions);
  }
  absl::Status IncrementalUnassign(const std::vector<TopicPartitionOffset>& partitions) override {
    absl::MutexLock lock(&state_->mutex);
    for (const auto& each : partitions) assigned_.erase({each.topic, each.partition});
    return absl::OkStatus();
  }

  absl::Status Subscribe(const std::vector<std::string>& topics) override {
    if (options_.group_id.empty()) return absl::InvalidArgumentError("subscribe needs a group id");
    absl::MutexLock lock(&state_->mutex);
    if (closed_) return absl::FailedPreconditionError("subscribe: the consumer is closed");
    if (member_ != nullptr) return absl::FailedPreconditionError("already subscribed");
    member_ = std::make_unique<Member>();
    member_->topics = topics;
    state_->groups[options_.group_id].members.push_back(member_.get());
    state_->changed.SignalAll();
    return absl::OkStatus();
  }

  void Close() override {
    std::set<TopicPartition> revoked;
    {
      absl::MutexLock lock(&state_->mutex);
      if (closed_) return;
      closed_ = true;
      if (member_ != nullptr) revoked = member_->owned;
    }
    if (!revoked.empty() && options_.on_rebalance) options_.on_rebalance({false, ToList(revoked)});
    absl::MutexLock lock(&state_->mutex);
    if (member_ != nullptr) {
      std::vector<Member*>& members = state_->groups[options_.group_id].members;
      auto found = std::find(members.begin(), members.end(), member_.get());
      if (found != members.end()) members.erase(found);
      member_->owned.clear();
      member_->left = true;
      member_->expelled = false;
    }
    assigned_.clear();
    state_->changed.SignalAll();
  }

  absl::Status Pause(const std::vector<TopicPartitionOffset>& partitions) override {
    return SetPaused(partitions, true);
  }
  absl::Status Resume(const std::vector<TopicPartitionOffset>& partitions) override {
    return SetPaused(partitions, false);
  }

  absl::Status Seek(const TopicPartitionOffset& position, absl::Duration) override {
    absl::MutexLock lock(&state_->mutex);
    auto found = assigned_.find({position.topic, position.partition});
    if (found == assigned_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("seek: ", position.topic, "/", position.partition, " is not assigned"));
    }
    found->second.position = Resolve({position.topic, position.partition}, position.offset);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) override {
    absl::MutexLock lock(&state_->mutex);
    auto found = assigned_.find({topic, partition});
    if (found == assigned_.end() || found->second.position < 0) return kNoOffset;
    found->second.position = Skip(found->first, found->second.position);
    return found->second.position;
  }

  absl::StatusOr<std::optional<Record>> Poll(absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    state_->mutex.Lock();
    for (;;) {
      state_->ExpireTransactions();
      if (std::optional<Rebalance> rebalance = NextRebalance()) {
        state_->mutex.Unlock();
        if (options_.on_rebalance) options_.on_rebalance(*rebalance);
        state_->mutex.Lock();
        if (!rebalance->assigned && !rebalance->lost) {
          for (const auto& each : rebalance->partitions) {
            member_->owned.erase({each.topic, each.partition});
            assigned_.erase({each.topic, each.partition});
          }
          state_->changed.SignalAll();
        }
        continue;
      }
      if (std::optional<Record> record = NextRecord()) {
        state_->mutex.Unlock();
        return record;
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      state_->changed.WaitWithTimeout(&state_->mutex, left);
    }
    state_->mutex.Unlock();
    return std::optional<Record>();
  }

  absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration) override {
    absl::MutexLock lock(&state_->mutex);
    auto found = state_->topics.find(topic);
    if (found == state_->topics.end()) {
      return absl::FailedPreconditionError(absl::StrCat("topic ", topic, " does not exist"));
    }
    return static_cast<int>(found->second.size());
  }

  absl::StatusOr<std::pair<int64_t, int64_t>> WatermarkOffsets(const std::string& topic,
                                                               int32_t partition,
                                                               absl::Duration) override {
    absl::MutexLock lock(&state_->mutex);
    std::vector<Entry>* log = state_->Log({topic, partition});
    if (log == nullptr) return UnknownPartition(topic, partition);
    return std::make_pair(int64_t{0}, static_cast<int64_t>(log->size()));
  }

  absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& topic, int partitions,
                                                  absl::Duration) override {
    absl::MutexLock lock(&state_->mutex);
    std::vector<int64_t> ends;
    for (int32_t partition = 0; partition < partitions; ++partition) {
      std::vector<Entry>* log = state_->Log({topic, partition});
      if (log == nullptr) return UnknownPartition(topic, partition);
      size_t end = 0;
      while (end < log->size() &&
             !(options_.read_committed && state_->IsOpen((*log)[end].transaction))) {
        ++end;
      }
      ends.push_back(static_cast<int64_t>(end));
    }
    return ends;
  }

  std::optional<int64_t> CachedHighWatermark(const std::string& topic, int32_t partition) override {
    absl::MutexLock lock(&state_->mutex);
    if (!assigned_.contains({topic, partition})) return std::nullopt;
    return static_cast<int64_t>(state_->Log({topic, partition})->size());
  }

  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&state_->mutex);
    auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
      state_->ExpireTransactions();
      if (!options_.read_committed) return true;
      for (const auto& each : partitions) {
        if (state_->OffsetInFlight(options_.group_id, {each.topic, each.partition})) return false;
      }
      return true;
    };
    while (!settled()) {
      if (state_->changed.WaitWithDeadline(&state_->mutex, deadline)) {
        if (!settled()) return absl::DeadlineExceededError("committed offsets: a transaction is open");
        break;
      }
    }
    std::vector<TopicPartitionOffset> out;
    const std::map<TopicPartition, int64_t>& committed = state_->groups[options_.group_id].committed;
    for (const auto& each : partitions) {
      auto found = committed.find({each.topic, each.partition});
      out.push_back({each.topic, each.partition, found == committed.end() ? kNoOffset : found->second});
    }
    return out;
  }

  absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets) override {
    if (options_.group_id.empty()) return absl::InvalidArgumentError("commit needs a group id");
    absl::MutexLock lock(&state_->mutex);
    for (const auto& each : offsets) {
      state_->groups[options_.group_id].committed[{each.topic, each.partition}] = each.offset;
    }
    state_->changed.SignalAll();
    return absl::OkStatus();
  }

  // For FakeProducer::SendOffsetsToTransaction, holding the state's lock.
  const std::string& group() const { return options_.group_id; }
  Member* member() { return member_.get(); }

 private:
  struct Assigned {
    int64_t position = kNoOffset;  // negative: not known yet
    bool paused = false;
  };

  static absl::Status UnknownPartition(const std::string& topic, int32_t partition) {
    return absl::InvalidArgumentError(absl::StrCat("unknown partition ", topic, "/", partition));
  }

  absl::Status AddLocked(const std::vector<TopicPartitionOffset>& partitions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    for (const auto& each : partitions) {
      if (state_->Log({each.topic, each.partition}) == nullptr) {
        return UnknownPartition(each.topic, each.partition);
      }
      assigned_[{each.topic, each.partition}].position =
          Resolve({each.topic, each.partition}, each.offset);
    }
    state_->changed.SignalAll();
    return absl::OkStatus();
  }

  absl::Status SetPaused(const std::vector<TopicPartitionOffset>& partitions, bool paused) {
    absl::MutexLock lock(&state_->mutex);
    for (const auto& each : partitions) {
      auto found = assigned_.find({each.topic, each.partition});
      if (found != assigned_.end()) found->second.paused = paused;
    }
    state_->changed.SignalAll();
    return absl::OkStatus();
  }

  int64_t Resolve(const TopicPartition& tp, int64_t offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    if (offset == kOffsetBeginning) return 0;
    if (offset == kOffsetEnd) return static_cast<int64_t>(state_->Log(tp)->size());
    return offset;
  }

  // Past what this consumer never reads: markers, and aborted records when
  // read_committed.
  int64_t Skip(const TopicPartition& tp, int64_t position)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    const std::vector<Entry>& log = *state_->Log(tp);
    while (position < static_cast<int64_t>(log.size())) {
      const Entry& entry = log[static_cast<size_t>(position)];
      const bool aborted = entry.transaction != 0 &&
                           state_->transactions[entry.transaction].outcome == Outcome::kAborted;
      if (!entry.marker && !(options_.read_committed && aborted)) break;
      ++position;
    }
    return position;
  }

  // The group's next change to this member: a revocation first, then an
  // assignment of partitions no other member still owns.
  std::optional<Rebalance> NextRebalance() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    if (member_ == nullptr || closed_) return std::nullopt;
    if (member_->expelled) {
      // Its partitions went to the others already; it learns of it now and
      // joins again, as librdkafka does for a fenced member.
      std::set<TopicPartition> lost;
      for (const auto& [tp, assigned] : assigned_) lost.insert(tp);
      assigned_.clear();
      member_->expelled = false;
      member_->left = false;
      state_->groups[options_.group_id].members.push_back(member_.get());
      state_->changed.SignalAll();
      if (!lost.empty()) return Rebalance{false, ToList(lost), /*lost=*/true};
    }
    std::set<TopicPartition> target = state_->Target(options_.group_id, member_.get());
    std::set<TopicPartition> revoked;
    for (const TopicPartition& tp : member_->owned) {
      if (!target.contains(tp)) revoked.insert(tp);
    }
    if (!revoked.empty()) return Rebalance{false, ToList(revoked)};
    std::set<TopicPartition> assigned;
    for (const TopicPartition& tp : target) {
      if (!member_->owned.contains(tp) && !state_->OwnedByAnother(options_.group_id, member_.get(), tp)) {
        assigned.insert(tp);
      }
    }
    if (assigned.empty()) return std::nullopt;
    for (const TopicPartition& tp : assigned) {
      member_->owned.insert(tp);
      assigned_[tp] = Assigned{};  // positioned once no transaction commits its offset
    }
    return Rebalance{true, ToList(assigned)};
  }

  std::optional<Record> NextRecord() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    std::vector<TopicPartition> order;
    for (const auto& [tp, assigned] : assigned_) order.push_back(tp);
    for (size_t i = 0; i < order.size(); ++i) {
      const TopicPartition& tp = order[(next_ + i) % order.size()];
      Assigned& assigned = assigned_[tp];
      if (assigned.paused) continue;
      if (assigned.position < 0) {
        if (state_->OffsetInFlight(options_.group_id, tp)) continue;
        auto committed = state_->groups[options_.group_id].committed.find(tp);
        assigned.position = committed != state_->groups[options_.group_id].committed.end()
                                ? committed->second
                                : Resolve(tp, options_.start_at_beginning ? kOffsetBeginning
                                                                          : kOffsetEnd);
      }
      assigned.position = Skip(tp, assigned.position);
      const std::vector<Entry>& log = *state_->Log(tp);
      if (assigned.position >= static_cast<int64_t>(log.size())) continue;
      const Entry& entry = log[static_cast<size_t>(assigned.position)];
      if (options_.read_committed && state_->IsOpen(entry.transaction)) continue;
      ++assigned.position;
      next_ = (next_ + i + 1) % order.size();
      return entry.record;
    }
    return std::nullopt;
  }

  const std::shared_ptr<State> state_;
  const ConsumerOptions options_;
  std::map<TopicPartition, Assigned> assigned_ ABSL_GUARDED_BY(state_->mutex);
  std::unique_ptr<Member> member_ ABSL_GUARDED_BY(state_->mutex);
  size_t next_ ABSL_GUARDED_BY(state_->mutex) = 0;
  bool closed_ ABSL_GUARDED_BY(state_->mutex) = false;
};

class FakeProducer final : public Producer {
 public:
  FakeProducer(std::shared_ptr<State> state, ProducerOptions options)
      : state_(std::move(state)), options_(std::move(options)) {}

  absl::Status Produce(const OutgoingRecord& record, DeliveryCallback on_delivery) override {
    {
      absl::MutexLock lock(&state_->mutex);
      if (absl::Status usable = UsableLocked(); !usable.ok()) return usable;
      if (transactional() && open_ == 0) {
        return absl::InternalError("produce: no transaction begun");
      }
      auto topic = state_->topics.find(record.topic);
      if (topic == state_->topics.end()) {
        return absl::InvalidArgumentError(absl::StrCat("cannot produce to ", record.topic,
                                                       ": unknown topic"));
      }
      const int32_t partition = record.partition.value_or(static_cast<int32_t>(
          std::hash<std::string>()(record.key) % topic->second.size()));
      std::vector<Entry>* log = state_->Log({record.topic, partition});
      if (log == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("cannot produce to ", record.topic, "/",
                                                       partition, ": unknown partition"));
      }
      Entry entry;
      entry.record = {record.topic, partition,        static_cast<int64_t>(log->size()),
                      record.key,   record.tombstone ? "" : record.value, record.headers,
                      absl::Now()};
      entry.transaction = open_;
      log->push_back(std::move(entry));
      if (open_ != 0) state_->transactions[open_].written.insert({record.topic, partition});
      pending_.push_back({std::move(on_delivery),
                          {absl::OkStatus(), record.topic, partition,
                           static_cast<int64_t>(log->size()) - 1}});
      state_->changed.SignalAll();
    }
    return absl::OkStatus();
  }

  Delivery ProduceAndWait(const OutgoingRecord& record) override {
    Delivery delivered;
    absl::Status queued = Produce(record, [&delivered](const Delivery& d) { delivered = d; });
    if (!queued.ok()) return {queued, record.topic};
    Report(absl::OkStatus());
    return delivered;
  }

  absl::Status Flush(absl::Duration) override {
    absl::Status usable;
    {
      absl::MutexLock lock(&state_->mutex);
      usable = UsableLocked();
    }
    Report(usable);
    return absl::OkStatus();
  }

  absl::Status WarmUp(const std::vector<std::string>& topics, absl::Duration) override {
    absl::MutexLock lock(&state_->mutex);
    for (const std::string& topic : topics) {
      if (!state_->topics.contains(topic)) {
        return absl::UnavailableError(absl::StrCat("metadata of ", topic, ": unknown topic"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status FatalError() const override {
    absl::MutexLock lock(&state_->mutex);
    return const_cast<FakeProducer*>(this)->UsableLocked();
  }

  absl::Status InitTransactions(absl::Duration) override {
    if (!transactional()) return absl::InternalError("init_transactions: not transactional");
    absl::MutexLock lock(&state_->mutex);
    state_->ExpireTransactions();
    auto open = state_->open_by_id.find(options_.transactional_id);
    if (open != state_->open_by_id.end()) state_->End(open->second, /*commit=*/false);
    epoch_ = ++state_->epochs[options_.transactional_id];
    return absl::OkStatus();
  }

  // Local, as in librdkafka: fencing shows at the next call that reaches
  // the broker.
  absl::Status BeginTransaction() override {
    absl::MutexLock lock(&state_->mutex);
    if (!fatal_.ok()) return fatal_;
    if (epoch_ == 0) return absl::InternalError("begin_transaction: InitTransactions first");
    if (open_ != 0) return absl::InternalError("begin_transaction: a transaction is open");
    open_ = state_->next_transaction++;
    Transaction& transaction = state_->transactions[open_];
    transaction.transactional_id = options_.transactional_id;
    transaction.started = absl::Now();
    transaction.timeout = options_.transaction_timeout;
    state_->open_by_id[options_.transactional_id] = open_;
    return absl::OkStatus();
  }

  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        Consumer& consumer, absl::Duration) override {
    auto* fake = dynamic_cast<FakeConsumer*>(&consumer);
    if (fake == nullptr) return absl::InvalidArgumentError("send_offsets: not a FakeKafka consumer");
    absl::MutexLock lock(&state_->mutex);
    if (absl::Status usable = UsableLocked(); !usable.ok()) return usable;
    if (open_ == 0) return absl::InternalError("send_offsets: no transaction begun");
    // As the broker (KIP-848), it checks that the member is still in the
    // group, not which partitions it owns.
    Member* member = fake->member();
    if (member != nullptr && member->expel_at_next_offsets) state_->Expel(fake->group(), member);
    if (member != nullptr && member->left) {
      return LostGroupMembershipError("send_offsets: not a member of the group (left or expelled)");
    }
    for (const auto& each : offsets) {
      state_->transactions[open_].offsets[fake->group()][{each.topic, each.partition}] = each.offset;
    }
    return absl::OkStatus();
  }

  absl::Status CommitTransaction(absl::Duration) override {
    absl::Status failed;
    {
      absl::MutexLock lock(&state_->mutex);
      if (absl::Status usable = UsableLocked(); !usable.ok()) return usable;
      if (open_ == 0) return absl::InternalError("commit_transaction: no transaction begun");
      if (state_->failing_commits > 0) {
        --state_->failing_commits;
        failed = state_->commit_error;
        if (failed.code() == absl::StatusCode::kAborted) return failed;
        // A producer that failed fatally leaves its transaction open until
        // a successor's InitTransactions or the timeout aborts it.
        fatal_ = failed;
      } else {
        state_->End(open_, /*commit=*/true);
      }
      open_ = 0;
    }
    Report(failed.ok() ? failed : absl::AbortedError("purged: the transaction failed"));
    return failed;
  }

  absl::Status AbortTransaction(absl::Duration) override {
    {
      absl::MutexLock lock(&state_->mutex);
      if (absl::Status usable = UsableLocked(); !usable.ok()) return usable;
      if (open_ == 0) return absl::InternalError("abort_transaction: no transaction begun");
      state_->End(open_, /*commit=*/false);
      open_ = 0;
    }
    Report(absl::AbortedError("purged: the transaction was aborted"));
    return absl::OkStatus();
  }

 private:
  bool transactional() const { return !options_.transactional_id.empty(); }

  // The producer's fatal error: the one it had, or being fenced by a newer
  // producer with its transactional id (or the broker's timeout).
  absl::Status UsableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mutex) {
    if (!fatal_.ok() || !transactional() || epoch_ == 0) return fatal_;
    state_->ExpireTransactions();
    if (state_->epochs[options_.transactional_id] != epoch_) {
      fatal_ = FencedError(absl::StrCat("producer fenced: transactional id ",
                                        options_.transactional_id, " has a newer epoch"));
    }
    return fatal_;
  }

  // Runs the delivery callbacks of what was produced so far; records of a
  // transaction that did not commit get `failed` when it is not OK.
  void Report(const absl::Status& failed) {
    std::vector<std::pair<DeliveryCallback, Delivery>> pending;
    {
      absl::MutexLock lock(&state_->mutex);
      pending.swap(pending_);
    }
    for (auto& [callback, delivery] : pending) {
      if (!failed.ok()) delivery.status = failed;
      if (callback) callback(delivery);
    }
  }

  const std::shared_ptr<State> state_;
  const ProducerOptions options_;
  int64_t epoch_ ABSL_GUARDED_BY(state_->mutex) = 0;
  int64_t open_ ABSL_GUARDED_BY(state_->mutex) = 0;
  absl::Status fatal_ ABSL_GUARDED_BY(state_->mutex);
  std::vector<std::pair<DeliveryCallback, Delivery>> pending_ ABSL_GUARDED_BY(state_->mutex);
};

}  // namespace

FakeKafka::FakeKafka() : state_(std::make_shared<State>()) {}
FakeKafka::~FakeKafka() = default;

void FakeKafka::CreateTopic(const std::string& name, int partitions) {
  absl::MutexLock lock(&state_->mutex);
  state_->topics[name].resize(static_cast<size_t>(partitions));
  state_->changed.SignalAll();
}

absl::StatusOr<std::unique_ptr<Consumer>> FakeKafka::NewConsumer(const ConsumerOptions& options) {
  return std::make_unique<FakeConsumer>(state_, options);
}

absl::StatusOr<std::unique_ptr<Producer>> FakeKafka::NewProducer(const ProducerOptions& options) {
  return std::make_unique<FakeProducer>(state_, options);
}

std::vector<Record> FakeKafka::Committed(const std::string& topic) {
  absl::MutexLock lock(&state_->mutex);
  std::vector<Record> out;
  auto found = state_->topics.find(topic);
  if (found == state_->topics.end()) return out;
  for (const std::vector<Entry>& log : found->second) {
    for (const Entry& entry : log) {
      if (entry.marker) continue;
      if (entry.transaction != 0 &&
          state_->transactions[entry.transaction].outcome != Outcome::kCommitted) {
        if (state_->IsOpen(entry.transaction)) break;  // the last stable offset
        continue;
      }
      out.push_back(entry.record);
    }
  }
  return out;
}

void FakeKafka::StrandOffsets(const std::string& group) {
  absl::MutexLock lock(&state_->mutex);
  state_->groups[group].strand_offsets = true;
}

std::optional<int64_t> FakeKafka::CommittedOffset(const std::string& group,
                                                  const std::string& topic, int32_t partition) {
  absl::MutexLock lock(&state_->mutex);
  const auto& committed = state_->groups[group].committed;
  auto found = committed.find({topic, partition});
  if (found == committed.end()) return std::nullopt;
  return found->second;
}

int64_t FakeKafka::Epoch(const std::string& transactional_id) {
  absl::MutexLock lock(&state_->mutex);
  return state_->epochs[transactional_id];
}

int64_t FakeKafka::TransactionsAborted() {
  absl::MutexLock lock(&state_->mutex);
  return state_->aborted_count;
}

void FakeKafka::ExpelMember(const std::string& group, size_t index, bool at_next_offsets) {
  absl::MutexLock lock(&state_->mutex);
  std::vector<Member*>& members = state_->groups[group].members;
  if (index >= members.size()) return;
  if (at_next_offsets) {
    members[index]->expel_at_next_offsets = true;
  } else {
    state_->Expel(group, members[index]);
  }
}

void FakeKafka::FailCommits(int times, absl::Status error) {
  absl::MutexLock lock(&state_->mutex);
  state_->failing_commits = times;
  state_->commit_error = std::move(error);
}

}  // namespace helpline::kafka::testing
