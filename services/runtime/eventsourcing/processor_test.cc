// The processor on an in-memory Kafka (kafka::testing::FakeKafka): its
// transaction step, recovery, fencing, rebalances and timers, with the
// example counter aggregate. The same rules against the real broker are in
// eventsourcing_kafka_test.cc and broker_restart_kafka_test.cc.
#include "services/runtime/eventsourcing/processor.h"

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/testing/counter_commands.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"
#include "services/runtime/kafka/testing/fake_kafka.h"

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
 protected:
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
    front_ = *kafka_->NewProducer({});
  }

  std::unique_ptr<Processor> Start(const ProcessorOptions& options, const Clock& clock) {
    auto processor =
        std::make_unique<Processor>(kafka_, options, testing::CounterType(), clock, nullptr);
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
  std::optional<Reply> ReplyTo(const std::string& command_id) {
    for (const Reply& reply : Replies()) {
      if (reply.command_id() == command_id) return reply;
    }
    return std::nullopt;
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
  ASSERT_TRUE(Eventually([&] { return Replies().size() == 4; }));
  EXPECT_TRUE(Replies().back().duplicate());
  EXPECT_EQ(Replies().back().aggregate_version(), 2);

  std::vector<Event> events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].incremented().total(), 7);
  ExpectContiguousVersions(events);
  // The commands' offsets went with the transactions: the next one to read.
  const int32_t partition = first.events_partition();
  EXPECT_EQ(kafka_->CommittedOffset(kGroup, topics_.commands, partition), 4);
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
  EXPECT_EQ(Replies().size(), 1u);
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
  EXPECT_TRUE(kafka::IsFenced(usurper->BeginTransaction()))
      << "the processor's new producer fenced the usurper in turn";
  ExpectExactlyOnce(acknowledged, Events());
}

TEST_F(ProcessorTest, ATransactionLeftOpenByAPredecessorIsAbortedAndNeverRead) {
  // A replica that died in the middle of a transaction: its event is in
  // the log, uncommitted, and holds back every read_committed reader.
  kafka::ProducerOptions predecessor_options;
  predecessor_options.transactional_id = "counter-processor-local";
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
  auto restarted = Start();
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    EXPECT_EQ(restarted->StateDigest(partition), digests[partition]) << "partition " << partition;
  }
  Reply next = SendUntilAnswered(Increment("counter-0", 1));
  EXPECT_EQ(next.aggregate_version(), versions["counter-0"] + 1);
  ExpectContiguousVersions(Events());
}

TEST_F(ProcessorTest, AReplicaThatJoinsTakesPartitionsOverAndNothingIsLostOrDoubled) {
  auto first = Start("a");
  std::atomic<bool> stop{false};
  absl::Mutex mutex;
  std::vector<std::string> acknowledged;
  std::thread client([&] {
    for (int i = 0; !stop.load(); ++i) {
      Command command = Increment(absl::StrCat("counter-", i % 7), 1);
      Reply reply = SendUntilAnswered(command);
      ASSERT_EQ(reply.code(), 0) << reply.message();
      absl::MutexLock lock(&mutex);
      acknowledged.push_back(command.meta().command_id());
    }
  });
  auto acknowledged_count = [&] {
    absl::MutexLock lock(&mutex);
    return acknowledged.size();
  };
  ASSERT_TRUE(Eventually([&] { return acknowledged_count() >= 20; }));

  auto second = Start("b");
  ASSERT_TRUE(Eventually([&] {
    return first->OwnedPartitions().size() + second->OwnedPartitions().size() == kPartitions &&
           !first->OwnedPartitions().empty() && !second->OwnedPartitions().empty();
  })) << "the partitions are shared";
  size_t before = acknowledged_count();
  ASSERT_TRUE(Eventually([&] { return acknowledged_count() >= before + 20; }));

  first->Stop();
  ASSERT_TRUE(Eventually([&] { return second->OwnedPartitions().size() == kPartitions; }))
      << "the replica left gives its partitions back";
  before = acknowledged_count();
  ASSERT_TRUE(Eventually([&] { return acknowledged_count() >= before + 20; }));
  stop.store(true);
  client.join();

  absl::MutexLock lock(&mutex);
  ExpectExactlyOnce(acknowledged, Events());
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
