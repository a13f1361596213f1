// The processor on an in-memory Kafka (kafka::testing::FakeKafka): its
// transaction step, recovery, fencing, rebalances and timers, with the
// example counter aggregate, including failures a real broker is hard to
// make on demand (a commit aborted or failing fatally, a member expelled).
// Against the real broker: eventsourcing_kafka_test.cc and
// broker_restart_kafka_test.cc.
#include "services/runtime/eventsourcing/processor.h"

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/testing/counter_commands.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"
#include "services/runtime/kafka/testing/fake_kafka.h"
#include "services/runtime/server/testing/registry_values.h"

namespace helpline::es {
namespace {

using Command = testing::CounterDomain::Command;
using Event = testing::CounterDomain::Event;
using runtime::v1::Reply;
using testing::ExpectContiguousVersions;
using testing::ExpectExactlyOnce;
using testing::Increment;

constexpr int kPartitions = 3;
constexpr char kGroup[] = "counter-processor";

class ProcessorTest : public ::testing::Test {
 public:
  ProcessorTest() : kafka_(std::make_shared<kafka::testing::FakeKafka>()) {
    topics_ = ServiceTopics::For("counter");
    for (const std::string& topic : {topics_.commands, topics_.events, topics_.snapshots}) {
      kafka_->CreateTopic(topic, kPartitions);
    }
    kafka_->CreateTopic(topics_.replies, 1);
    kafka_->CreateTopic(topics_.deadletter, 1);
    options_.service = "counter";
    options_.topics = topics_;
    options_.idle_poll = absl::Milliseconds(20);
    options_.fencing_backoff = absl::Milliseconds(50);
    // Longer than any test: the cluster never aborts a transaction the
    // processor left open, so a processor that waited for that would stall.
    options_.transaction_timeout = absl::Minutes(10);
    front_ = *kafka_->NewProducer({});
  }

  std::unique_ptr<Processor> Start(const ProcessorOptions& options, const Clock& clock,
                                   ProcessorMetrics* metrics = nullptr) {
    auto processor =
        std::make_unique<Processor>(kafka_, options, testing::CounterType(), clock, metrics);
    absl::Status started = processor->Start();
    EXPECT_TRUE(started.ok()) << started;
    EXPECT_TRUE(Eventually([&] { return processor->Ready(); })) << "not ready";
    return processor;
  }
  std::unique_ptr<Processor> Start(const std::string& replica = "local") {
    ProcessorOptions options = options_;
    options.replica = replica;
    return Start(options, clock_);
  }

  static bool Eventually(const std::function<bool()>& condition,
                         absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!condition()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  // As a front does: to the aggregate's partition, answered on replies/0.
  std::string Send(Command command) {
    command.mutable_meta()->set_reply_to("test-front");
    command.mutable_meta()->set_reply_partition(0);
    kafka::Delivery delivery = front_->ProduceAndWait(
        {topics_.commands, std::nullopt, command.meta().aggregate_id(), command.SerializeAsString()});
    EXPECT_TRUE(delivery.status.ok()) << delivery.status;
    return command.meta().command_id();
  }

  // Every committed reply, in order.
  std::vector<Reply> Replies() {
    std::vector<Reply> replies;
    for (const kafka::Record& record : kafka_->Committed(topics_.replies)) {
      Reply reply;
      EXPECT_TRUE(reply.ParseFromString(record.value));
      replies.push_back(reply);
    }
    return replies;
  }
  std::optional<Reply> ReplyTo(const std::string& command_id, bool duplicate = false) {
    for (const Reply& reply : Replies()) {
      if (reply.command_id() == command_id && reply.duplicate() == duplicate) return reply;
    }
    return std::nullopt;
  }
  // Replies that are a command's first outcome (a client's resend gets a
  // duplicate one).
  int FirstReplies() {
    int count = 0;
    for (const Reply& reply : Replies()) count += reply.duplicate() ? 0 : 1;
    return count;
  }
  int64_t CommandsIn(int32_t partition) {
    int64_t count = 0;
    for (const kafka::Record& record : kafka_->Committed(topics_.commands)) {
      count += record.partition == partition ? 1 : 0;
    }
    return count;
  }
  // Sends and waits for the reply, sending the same command again (as a
  // client retries) when none came in time.
  Reply SendUntilAnswered(const Command& command) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      std::string id = Send(command);
      std::optional<Reply> reply;
      if (Eventually([&] { return (reply = ReplyTo(id)).has_value(); }, absl::Seconds(3))) {
        return *reply;
      }
    }
    ADD_FAILURE() << "no reply to " << command.meta().command_id();
    return Reply();
  }

  std::vector<Event> Events() { return testing::Events(kafka_->Committed(topics_.events)); }

  std::shared_ptr<kafka::testing::FakeKafka> kafka_;
  ServiceTopics topics_;
  ProcessorOptions options_;
  SystemClock clock_;
  std::unique_ptr<kafka::Producer> front_;
};

TEST_F(ProcessorTest, ACommandBecomesItsEventAndReplyCommittedWithItsOffset) {
  auto processor = Start();
  EXPECT_EQ(processor->OwnedPartitions().size(), static_cast<size_t>(kPartitions))
      << "the only member of the group owns every partition";

  Reply first = SendUntilAnswered(Increment("counter-a", 5));
  EXPECT_EQ(first.code(), 0) << first.message();
  EXPECT_EQ(first.aggregate_version(), 1);
  Command again = Increment("counter-a", 2);
  Reply second = SendUntilAnswered(again);
  EXPECT_EQ(second.aggregate_version(), 2);
  Reply refused = SendUntilAnswered(Increment("counter-a", 5000));
  EXPECT_EQ(refused.code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  ASSERT_EQ(refused.field_violations_size(), 1);
  EXPECT_EQ(refused.field_violations(0).field(), "increment.by");

  // The same command id again: the first outcome, and no second event.
  Send(again);
  std::optional<Reply> duplicate;
  ASSERT_TRUE(Eventually([&] {
    return (duplicate = ReplyTo(again.meta().command_id(), /*duplicate=*/true)).has_value();
  }));
  EXPECT_EQ(duplicate->aggregate_version(), 2);
  EXPECT_EQ(FirstReplies(), 3);

  std::vector<Event> events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].incremented().total(), 7);
  ExpectContiguousVersions(events);
  // The commands' offsets went with the transactions: the next one to read.
  const int32_t partition = first.events_partition();
  EXPECT_EQ(kafka_->CommittedOffset(kGroup, topics_.commands, partition), CommandsIn(partition));
}

TEST_F(ProcessorTest, AnAbortedCommitIsDecidedAgainAndWrittenOnce) {
  auto processor = Start();
  kafka_->FailCommits(2, absl::AbortedError("commit_transaction: coordinator moved"));
  Reply reply = SendUntilAnswered(Increment("counter-a", 1));
  EXPECT_EQ(reply.code(), 0) << reply.message();
  EXPECT_GE(kafka_->TransactionsAborted(), 2);
  std::vector<Event> events = Events();
  ASSERT_EQ(events.size(), 1u) << "the aborted attempts left nothing a reader sees";
  EXPECT_EQ(events[0].meta().command_id(), reply.command_id());
  EXPECT_EQ(FirstReplies(), 1);
  EXPECT_EQ(kafka_->Epoch("counter-processor-local"), 1) << "aborted, not fatal: same producer";
}

TEST_F(ProcessorTest, AFatalCommitRebuildsFromTheLogAndDecidesNothingTwice) {
  auto processor = Start();
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 6; ++i) {
    Command command = Increment(absl::StrCat("counter-", i % 3), 1);
    ASSERT_EQ(SendUntilAnswered(command).code(), 0);
    acknowledged.push_back(command.meta().command_id());
  }
  kafka_->FailCommits(1, absl::FailedPreconditionError("fatal: idempotence broken"));
  for (int i = 0; i < 6; ++i) {
    Command command = Increment(absl::StrCat("counter-", i % 3), 1);
    Reply reply = SendUntilAnswered(command);
    ASSERT_EQ(reply.code(), 0) << reply.message();
    EXPECT_EQ(reply.aggregate_version(), 3 + i / 3) << "state rebuilt from the events before";
    acknowledged.push_back(command.meta().command_id());
  }
  ExpectExactlyOnce(acknowledged, Events());
  EXPECT_EQ(processor->TimesFenced(), 0);
  EXPECT_EQ(kafka_->Epoch("counter-processor-local"), 2)
      << "a new producer, which aborted the failed one's transaction before the rebuild";
}

// Seen after a broker restart: transactions committed their events, but the
// broker never settled the offsets they sent, so a rebuild waiting for them
// would wait for good.
TEST_F(ProcessorTest, OffsetsTheBrokerNeverSettlesDoNotStopARebuildNorDoubleAnything) {
  options_.unsettled_offsets_patience = absl::Seconds(1);
  std::vector<std::string> acknowledged;
  {
    auto processor = Start();
    for (int i = 0; i < 3; ++i) {
      Command command = Increment(absl::StrCat("counter-", i), 1);
      ASSERT_EQ(SendUntilAnswered(command).code(), 0);
      acknowledged.push_back(command.meta().command_id());
    }
    kafka_->StrandOffsets("counter-processor");
    // A reactor's command (nobody waits for a reply) refused: its only
    // trace is the dead letter. Decided again, it would leave a second.
    Command refused = Increment("counter-0", 1);
    refused.mutable_increment()->set_limit(1);  // the counter is at 1 already
    ASSERT_TRUE(front_->ProduceAndWait({topics_.commands, std::nullopt, "counter-0",
                                        refused.SerializeAsString()})
                    .status.ok());
    ASSERT_TRUE(Eventually([&] { return !kafka_->Committed(topics_.deadletter).empty(); }));
    for (int i = 0; i < 3; ++i) {
      Command command = Increment(absl::StrCat("counter-", i), 1);
      ASSERT_EQ(SendUntilAnswered(command).code(), 0);
      acknowledged.push_back(command.meta().command_id());
    }
  }
  prometheus::Registry registry;
  ProcessorMetrics metrics(registry, "counter.processor");
  auto restarted = Start(options_, clock_, &metrics);
  ASSERT_TRUE(restarted->Ready()) << "rebuilt from the offsets settled before";
  for (int i = 0; i < 3; ++i) {
    Command command = Increment(absl::StrCat("counter-", i), 1);
    Reply reply = SendUntilAnswered(command);
    ASSERT_EQ(reply.code(), 0) << reply.message();
    EXPECT_EQ(reply.aggregate_version(), 3) << "nothing of the first life decided twice";
    acknowledged.push_back(command.meta().command_id());
  }
  ExpectExactlyOnce(acknowledged, Events());
  EXPECT_EQ(kafka_->Committed(topics_.deadletter).size(), 1u)
      << "the refused command was not decided again";
  EXPECT_GE(server::testing::ValueOf(registry, "helpline_processor_unsettled_offsets_passed_total"),
            1);
}

TEST_F(ProcessorTest, AProcessorFencedByItsOwnIdTakesItsPartitionsBackWithoutDoubling) {
  auto processor = Start();
  std::vector<std::string> acknowledged;
  Command first = Increment("counter-a", 1);
  ASSERT_EQ(SendUntilAnswered(first).code(), 0);
  acknowledged.push_back(first.meta().command_id());

  // A second replica given the same name: its producer fences this one.
  kafka::ProducerOptions same_name;
  same_name.transactional_id = "counter-processor-local";
  std::unique_ptr<kafka::Producer> usurper = *kafka_->NewProducer(same_name);
  ASSERT_TRUE(usurper->InitTransactions(absl::Seconds(1)).ok());

  for (int i = 0; i < 4; ++i) {
    Command command = Increment("counter-a", 1);
    Reply reply = SendUntilAnswered(command);
    ASSERT_EQ(reply.code(), 0) << reply.message();
    acknowledged.push_back(command.meta().command_id());
  }
  EXPECT_EQ(processor->TimesFenced(), 1);
  ASSERT_TRUE(usurper->BeginTransaction().ok());
  EXPECT_TRUE(kafka::IsFenced(usurper->CommitTransaction(absl::Seconds(1))))
      << "the processor's new producer fenced the usurper in turn";
  ExpectExactlyOnce(acknowledged, Events());
}

TEST_F(ProcessorTest, ATransactionLeftOpenByAPredecessorIsAbortedAndNeverRead) {
  // A replica that died in the middle of a transaction: its event is in
  // the log, uncommitted, and holds back every read_committed reader.
  kafka::ProducerOptions predecessor_options;
  predecessor_options.transactional_id = "counter-processor-local";
  predecessor_options.transaction_timeout = absl::Minutes(10);
  std::unique_ptr<kafka::Producer> predecessor = *kafka_->NewProducer(predecessor_options);
  ASSERT_TRUE(predecessor->InitTransactions(absl::Seconds(1)).ok());
  ASSERT_TRUE(predecessor->BeginTransaction().ok());
  Event ghost;
  ghost.mutable_meta()->set_aggregate_id("counter-a");
  ghost.mutable_meta()->set_aggregate_version(1);
  ghost.mutable_incremented()->set_total(1000);
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    ASSERT_TRUE(predecessor
                    ->Produce({topics_.events, partition, "counter-a", ghost.SerializeAsString()},
                              nullptr)
                    .ok());
  }

  auto processor = Start();  // its producer, with the same id, aborts it
  EXPECT_EQ(kafka_->TransactionsAborted(), 1);
  Reply reply = SendUntilAnswered(Increment("counter-a", 1));
  EXPECT_EQ(reply.aggregate_version(), 1);
  std::vector<Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].incremented().total(), 1) << "the aborted event was not applied";
}

TEST_F(ProcessorTest, ARestartedProcessorRebuildsTheSameStateFromSnapshotsAndEvents) {
  options_.snapshots.every_events = 4;
  std::map<int32_t, std::string> digests;
  std::map<std::string, int64_t> versions;
  {
    auto processor = Start();
    for (int i = 0; i < 20; ++i) {
      std::string aggregate = absl::StrCat("counter-", i % 5);
      Reply reply = SendUntilAnswered(Increment(aggregate, 1 + i));
      ASSERT_EQ(reply.code(), 0);
      versions[aggregate] = reply.aggregate_version();
    }
    // Snapshots are written between batches: wait for one of every
    // partition that had enough events for it.
    std::map<int32_t, int> events_per_partition;
    for (const kafka::Record& record : kafka_->Committed(topics_.events)) {
      ++events_per_partition[record.partition];
    }
    ASSERT_TRUE(Eventually([&] {
      std::set<int32_t> snapshotted;
      for (const kafka::Record& record : kafka_->Committed(topics_.snapshots)) {
        snapshotted.insert(record.partition);
      }
      for (const auto& [partition, count] : events_per_partition) {
        if (count >= 4 && !snapshotted.contains(partition)) return false;
      }
      return !snapshotted.empty();
    }));
    for (int32_t partition = 0; partition < kPartitions; ++partition) {
      digests[partition] = processor->StateDigest(partition);
    }
  }
  prometheus::Registry registry;
  ProcessorMetrics metrics(registry);
  auto restarted = Start(options_, clock_, &metrics);
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    EXPECT_EQ(restarted->StateDigest(partition), digests[partition]) << "partition " << partition;
  }
  double replayed = -1;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name == "helpline_processor_events_replayed_total") {
      replayed = family.metric.at(0).counter.value;
    }
  }
  EXPECT_GE(replayed, 0);
  EXPECT_LT(replayed, static_cast<double>(Events().size())) << "the snapshots spared a replay";
  Reply next = SendUntilAnswered(Increment("counter-0", 1));
  EXPECT_EQ(next.aggregate_version(), versions["counter-0"] + 1);
  ExpectContiguousVersions(Events());
}

// A client that keeps incrementing seven counters, each command until
// answered, remembering the acknowledged ones.
class Client {
 public:
  explicit Client(ProcessorTest* test) : test_(test), thread_([this] { Run(); }) {}
  ~Client() { Stop(); }
  std::vector<std::string> Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mutex_);
    return acknowledged_;
  }
  // Waits for `more` acknowledgements from now.
  bool AcknowledgesMore(size_t more);

 private:
  void Run();
  size_t Acknowledged() {
    absl::MutexLock lock(&mutex_);
    return acknowledged_.size();
  }

  ProcessorTest* test_;
  std::atomic<bool> stop_{false};
  absl::Mutex mutex_;
  std::vector<std::string> acknowledged_ ABSL_GUARDED_BY(mutex_);
  std::thread thread_;
};

TEST_F(ProcessorTest, AReplicaThatJoinsTakesPartitionsOverAndNothingIsLostOrDoubled) {
  auto first = Start("a");
  Client client(this);
  ASSERT_TRUE(client.AcknowledgesMore(20));

  auto second = Start("b");
  ASSERT_TRUE(Eventually([&] {
    return first->OwnedPartitions().size() + second->OwnedPartitions().size() == kPartitions &&
           !first->OwnedPartitions().empty() && !second->OwnedPartitions().empty();
  })) << "the partitions are shared";
  ASSERT_TRUE(client.AcknowledgesMore(20));

  first->Stop();
  ASSERT_TRUE(Eventually([&] { return second->OwnedPartitions().size() == kPartitions; }))
      << "the replica left gives its partitions back";
  ASSERT_TRUE(client.AcknowledgesMore(20));
  std::vector<std::string> acknowledged = client.Stop();  // before the events are read
  ExpectExactlyOnce(acknowledged, Events());
}

// The group drops a replica (its session ran out) while it goes on
// deciding: it can no longer commit, its partitions go on at the other
// replica, and it joins again.
TEST_F(ProcessorTest, AnExpelledReplicaCommitsNothingMoreAndItsPartitionsGoOnElsewhere) {
  auto first = Start("a");
  auto second = Start("b");
  ASSERT_TRUE(Eventually([&] {
    return first->OwnedPartitions().size() + second->OwnedPartitions().size() == kPartitions &&
           !first->OwnedPartitions().empty() && !second->OwnedPartitions().empty();
  }));
  Client client(this);
  ASSERT_TRUE(client.AcknowledgesMore(20));

  // "a", the first to join, in the middle of a transaction.
  kafka_->ExpelMember(kGroup, 0, /*at_next_offsets=*/true);
  ASSERT_TRUE(client.AcknowledgesMore(20));
  EXPECT_EQ(kafka_->Epoch("counter-processor-a"), 2)
      << "its transaction was refused, and it started over with a new producer";
  ASSERT_TRUE(Eventually([&] {
    return first->OwnedPartitions().size() + second->OwnedPartitions().size() == kPartitions &&
           !first->OwnedPartitions().empty() && first->Ready() && second->Ready();
  })) << "the expelled replica joined again and took its share back";
  ASSERT_TRUE(client.AcknowledgesMore(20));
  std::vector<std::string> acknowledged = client.Stop();  // before the events are read
  ExpectExactlyOnce(acknowledged, Events());
}

void Client::Run() {
  for (int i = 0; !stop_.load(); ++i) {
    Command command = Increment(absl::StrCat("counter-", i % 7), 1);
    Reply reply = test_->SendUntilAnswered(command);
    ASSERT_EQ(reply.code(), 0) << reply.message();
    absl::MutexLock lock(&mutex_);
    acknowledged_.push_back(command.meta().command_id());
  }
}

bool Client::AcknowledgesMore(size_t more) {
  const size_t target = Acknowledged() + more;
  return ProcessorTest::Eventually([&] { return Acknowledged() >= target; });
}

TEST_F(ProcessorTest, ADueTimerRingsOnTheServiceClock) {
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  auto processor = Start(options_, clock);
  Command schedule;
  schedule.mutable_meta()->set_aggregate_id("counter-a");
  schedule.mutable_meta()->set_command_id("schedule-1");
  *schedule.mutable_schedule_alarm()->mutable_at() = ToProtoTime(clock.Now() + absl::Minutes(10));
  ASSERT_EQ(SendUntilAnswered(schedule).code(), 0);

  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Events().size(), 1u) << "not due yet on the service clock";
  clock.Advance(absl::Minutes(11));
  ASSERT_TRUE(Eventually([&] { return Events().size() == 2; }));
  Event rang = Events()[1];
  ASSERT_TRUE(rang.has_alarm_rang());
  EXPECT_EQ(FromProtoTime(rang.alarm_rang().rang_at()), clock.Now());
  EXPECT_EQ(rang.meta().aggregate_version(), 2);
}

}  // namespace
}  // namespace helpline::es
