// The event-sourcing runtime against the test run's Kafka, with the example
// counter aggregate: the command path, exactly-once rules, read models,
// reactors, timers, snapshots and dead letters.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/eventsourcing/testing/counter_commands.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/producer.h"
#include "tests/support/child_process.h"
#include "tests/support/test_stack.h"

namespace helpline::es {
namespace {

using ::helpline::testing::CreateServiceTopics;
using ::helpline::testing::ReadToEnd;
using ::helpline::testing::TestKafka;
using ::helpline::testing::UniqueName;
using Command = testing::CounterDomain::Command;
using Event = testing::CounterDomain::Event;
using runtime::v1::Reply;
using testing::Events;
using testing::ExpectContiguousVersions;
using testing::ExpectExactlyOnce;
using testing::Increment;
using testing::SendUntilAnswered;

constexpr int kPartitions = 3;

class CounterProjection : public TypedProjection<Event> {
 public:
  void Apply(const Event& event) override {
    absl::MutexLock lock(&mutex_);
    if (event.has_incremented()) totals_[event.meta().aggregate_id()] = event.incremented().total();
    if (event.has_alarm_rang()) ++rings_[event.meta().aggregate_id()];
  }
  int64_t Total(const std::string& id) {
    absl::MutexLock lock(&mutex_);
    return totals_[id];
  }

 private:
  absl::Mutex mutex_;
  std::map<std::string, int64_t> totals_;
  std::map<std::string, int64_t> rings_;
};

class EventSourcingKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = UniqueName("es") + ".";
    topics_ = ServiceTopics::For("counter", prefix_);
    CreateServiceTopics("counter", prefix_, kPartitions);
    options_.service = prefix_ + "counter";
    options_.topics = topics_;
    options_.session_timeout = absl::Seconds(6);
    auto kafka = kafka::SharedClients::Create(TestKafka());
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = *std::move(kafka);
  }

  std::unique_ptr<Processor> StartProcessor(const ProcessorOptions& options,
                                            const Clock& clock) {
    auto processor = std::make_unique<Processor>(TestKafka(), options,
                                                 testing::CounterType(), clock, nullptr);
    absl::Status started = processor->Start();
    EXPECT_TRUE(started.ok()) << started;
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!processor->Ready() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    EXPECT_TRUE(processor->Ready()) << "processor not ready within 60 s";
    return processor;
  }
  std::unique_ptr<Processor> StartProcessor() { return StartProcessor(options_, clock_); }
  void ExpectSnapshotRecoveryEqualsFullReplay(int* part_records);

  std::unique_ptr<CommandSender> Sender() {
    auto sender = CommandSender::Create(*kafka_, {topics_, ""});
    EXPECT_TRUE(sender.ok()) << sender.status();
    return sender.ok() ? *std::move(sender) : nullptr;
  }

  std::vector<Event> AllEvents() { return Events(ReadToEnd(topics_.events, kPartitions)); }

  std::string prefix_;
  std::unique_ptr<kafka::SharedClients> kafka_;
  ServiceTopics topics_;
  ProcessorOptions options_;
  SystemClock clock_;
};

TEST_F(EventSourcingKafkaTest, CommandBecomesEventReplyAndReadModelState) {
  prometheus::Registry registry;
  ProcessorMetrics metrics(registry);
  auto processor = std::make_unique<Processor>(TestKafka(), options_, testing::CounterType(),
                                               clock_, &metrics);
  ASSERT_TRUE(processor->Start().ok());
  auto sender = Sender();
  CounterProjection projection;
  EventFeed feed(*kafka_, {topics_.events, topics_.deadletter, "test-feed"},
                 [] { return std::make_unique<Event>(); }, projection);
  EXPECT_EQ(feed.WaitUntilCurrent(absl::Now()).code(), absl::StatusCode::kUnavailable)
      << "a feed that has not started has read nothing";
  ASSERT_TRUE(feed.Start().ok());

  Command command = Increment("counter-a", 5);
  command.mutable_meta()->set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  absl::StatusOr<Reply> reply = sender->Send(command, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->code(), 0) << reply->message();
  EXPECT_EQ(reply->aggregate_version(), 1);
  EXPECT_EQ(reply->last_event_offset(), -1) << "written with its event, before its offset is known";
  EXPECT_FALSE(reply->duplicate());

  // Read-your-writes: once the feed applied the reply's version, the read model has it.
  ASSERT_TRUE(feed.WaitForVersion(reply->aggregate_id(), reply->aggregate_version(),
                                  absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(projection.Total("counter-a"), 5);
  EXPECT_TRUE(feed.CaughtUp());

  std::vector<kafka::Record> records = ReadToEnd(topics_.events, kPartitions);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, "counter-a");
  EXPECT_EQ(records[0].partition, reply->events_partition());
  EXPECT_EQ(records[0].HeaderValue("ce_type"), "helpline.testing.v1.Incremented");
  EXPECT_EQ(records[0].HeaderValue("ce_subject"), "counter-a");
  EXPECT_EQ(TraceIdOf(records[0].HeaderValue("traceparent").value_or("")),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  Event event = Events(records)[0];
  EXPECT_EQ(event.meta().command_id(), command.meta().command_id());
  EXPECT_EQ(event.meta().aggregate_version(), 1);
  EXPECT_TRUE(ids::IsUuid(event.meta().event_id()));
  EXPECT_EQ(records[0].HeaderValue("ce_id"), event.meta().event_id());
  std::string exposition = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(exposition, ::testing::HasSubstr("helpline_processor_commands_total{result=\"ok\"} 1"));
}

// The commands lag gauge: what waits in a partition while the processor
// works through it (one command a transaction here), then zero.
TEST_F(EventSourcingKafkaTest, CommandsLagShowsWhatWaitsThenZero) {
  auto sender = Sender();
  for (int i = 0; i < 200; ++i) {
    Command command = Increment("lagging", 1);
    sender->SendAsync(command, *command.mutable_meta(), absl::Now() + absl::Seconds(60),
                      [](const auto&) {});
  }
  absl::SleepFor(absl::Seconds(2));  // written before any processor reads them
  options_.max_batch_commands = 1;
  prometheus::Registry registry;
  ProcessorMetrics metrics(registry);
  Processor processor(TestKafka(), options_, testing::CounterType(), clock_, &metrics);
  ASSERT_TRUE(processor.Start().ok());
  double most = 0;
  double last = -1;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    processor.ReportLag();  // as the service's lag loop does every second
    double total = 0;
    bool seen = false;
    for (const auto& family : registry.Collect()) {
      if (family.name != "helpline_processor_commands_lag") continue;
      for (const auto& metric : family.metric) {
        total += metric.gauge.value;
        seen = true;
      }
    }
    if (seen) {
      most = std::max(most, total);
      last = total;
    }
    if (seen && most > 0 && total == 0) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_GT(most, 100) << "the waiting commands showed as lag";
  EXPECT_EQ(last, 0) << "and the lag fell to zero once they were handled";
}

TEST_F(EventSourcingKafkaTest, RetryOfTheSameCommandActsOnce) {
  auto processor = StartProcessor();
  auto sender = Sender();
  Command command = Increment("counter-retry", 7, ids::CommandId("user-1", "request-1"));
  Command first_try = command, second_try = command;
  absl::StatusOr<Reply> first = sender->Send(first_try, absl::Now() + absl::Seconds(30));
  absl::StatusOr<Reply> second = sender->Send(second_try, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_FALSE(first->duplicate());
  EXPECT_TRUE(second->duplicate());
  EXPECT_EQ(second->code(), 0);
  EXPECT_EQ(second->aggregate_version(), first->aggregate_version());
  std::vector<kafka::Record> written = ReadToEnd(topics_.events, kPartitions);
  ASSERT_EQ(written.size(), 1u) << "the retry wrote nothing";
  EXPECT_EQ(second->last_event_offset(), written[0].offset) << "a retry's answer names the event";

  // Still a no-op after the processor restarts and rebuilds from the log.
  processor->Stop();
  processor = StartProcessor();
  Command third_try = command;
  absl::StatusOr<Reply> third = sender->Send(third_try, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->duplicate());
  EXPECT_EQ(third->aggregate_version(), first->aggregate_version());
  EXPECT_EQ(third->last_event_offset(), written[0].offset);
  EXPECT_EQ(AllEvents().size(), 1u);
}

TEST_F(EventSourcingKafkaTest, RejectionNamesTheFieldAndWritesNothing) {
  auto processor = StartProcessor();
  auto sender = Sender();
  Command command = Increment("counter-bad", 0);
  absl::StatusOr<Reply> reply = sender->Send(command, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(reply.ok());
  absl::Status status = errors::FromReply(*reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(errors::FieldViolations(status).size(), 1u);
  EXPECT_EQ(errors::FieldViolations(status)[0].field, "increment.by");
  EXPECT_EQ(reply->aggregate_version(), 0);
  Command valid = Increment("counter-bad", 1);
  ASSERT_TRUE(sender->Send(valid, absl::Now() + absl::Seconds(30)).ok());
  std::vector<Event> events = AllEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].meta().command_id(), valid.meta().command_id());
}

TEST_F(EventSourcingKafkaTest, ConcurrentConflictingClientsGetContiguousVersionsOrAborted) {
  auto processor = StartProcessor();
  auto sender = Sender();
  Command create = Increment("contended", 1);
  ASSERT_EQ(sender->Send(create, absl::Now() + absl::Seconds(30))->code(), 0);
  constexpr int kClients = 32;
  std::atomic<int> aborted{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      int64_t believed_version = 1;
      for (int attempt = 0; attempt < 1000; ++attempt) {
        Command command = Increment("contended", 1,
                                    ids::CommandId("client", absl::StrCat(c, "/", attempt)),
                                    believed_version);
        absl::StatusOr<Reply> reply = sender->Send(command, absl::Now() + absl::Seconds(30));
        if (!reply.ok()) continue;
        if (reply->code() == 0) return;
        ASSERT_EQ(reply->code(), static_cast<int>(absl::StatusCode::kAborted)) << reply->message();
        ++aborted;
        believed_version = reply->aggregate_version();  // the version it is really at
      }
      ADD_FAILURE() << "client " << c << " never got its increment in";
    });
  }
  for (auto& client : clients) client.join();
  std::vector<Event> events = AllEvents();
  EXPECT_EQ(events.size(), static_cast<size_t>(kClients + 1));
  ExpectContiguousVersions(events);
  EXPECT_EQ(events.back().incremented().total(), kClients + 1);
  EXPECT_GT(aborted.load(), 0) << "the clients did conflict";
}

TEST_F(EventSourcingKafkaTest, NoProcessorMeansDeadlineExceededNotAHang) {
  auto sender = Sender();
  Command command = Increment("nobody-home", 1);
  absl::Time started = absl::Now();
  absl::StatusOr<Reply> reply = sender->Send(command, absl::Now() + absl::Milliseconds(500));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - started, absl::Seconds(5));
}

TEST_F(EventSourcingKafkaTest, PoisonCommandGoesToTheDeadLetterTopicAndTheRestGoesOn) {
  auto processor = StartProcessor();
  auto sender = Sender();
  auto producer = kafka::Producer::Create(TestKafka(), {});
  ASSERT_TRUE(producer.ok());
  kafka::Delivery poison = (*producer)->ProduceAndWait(
      {topics_.commands, std::nullopt, "poisoned", std::string("\xff\xff\xff not protobuf"), {}});
  ASSERT_TRUE(poison.status.ok());
  Command after = Increment("poisoned", 2);
  absl::StatusOr<Reply> reply = sender->Send(after, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code(), 0);

  std::vector<kafka::Record> dead = ReadToEnd(topics_.deadletter, kPartitions);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].key, "poisoned");
  EXPECT_EQ(dead[0].value, std::string("\xff\xff\xff not protobuf"));
  EXPECT_THAT(dead[0].HeaderValue("dlq_reason").value_or(""),
              ::testing::HasSubstr("helpline.testing.v1.CounterCommand"));
  EXPECT_EQ(dead[0].HeaderValue("dlq_source_offset"), std::to_string(poison.offset));
}

// A command whose reply names a partition the replies topic does not have
// (a buggy client): it is decided, and the other partitions' commands, in
// the same transactions, are still answered.
TEST_F(EventSourcingKafkaTest, ReplyToAMissingPartitionDoesNotStopTheProcessor) {
  auto processor = StartProcessor();
  auto sender = Sender();
  auto producer = kafka::Producer::Create(TestKafka(), {});
  ASSERT_TRUE(producer.ok());
  Command misaddressed = Increment("misaddressed", 3);
  misaddressed.mutable_meta()->set_reply_to("someone");
  misaddressed.mutable_meta()->set_reply_partition(kPartitions + 40);
  ASSERT_TRUE((*producer)
                  ->ProduceAndWait({topics_.commands, std::nullopt, "misaddressed",
                                    misaddressed.SerializeAsString(), {}})
                  .status.ok());
  for (int i = 0; i < 6; ++i) {
    Command after = Increment(absl::StrCat("well-addressed-", i), 1);
    absl::StatusOr<Reply> reply = sender->Send(after, absl::Now() + absl::Seconds(30));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->code(), 0);
  }
  auto misaddressed_events = [&] {
    int count = 0;
    for (const Event& event : AllEvents()) count += event.meta().aggregate_id() == "misaddressed";
    return count;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (misaddressed_events() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(misaddressed_events(), 1) << "the command itself is decided once";
}

TEST_F(EventSourcingKafkaTest, ReadModelDeadLettersAnUndecodableEventAndGoesOn) {
  auto producer = kafka::Producer::Create(TestKafka(), {});
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE((*producer)->ProduceAndWait({topics_.events, 0, "broken", std::string("\x08\xff garbage"), {}})
                  .status.ok());
  auto processor = StartProcessor();
  auto sender = Sender();
  CounterProjection projection;
  EventFeed feed(*kafka_, {topics_.events, topics_.deadletter, "test-feed"},
                 [] { return std::make_unique<Event>(); }, projection);
  ASSERT_TRUE(feed.Start().ok());
  Command command = Increment("after-broken", 4);
  absl::StatusOr<Reply> reply = sender->Send(command, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(feed.WaitForVersion(reply->aggregate_id(), reply->aggregate_version(),
                                  absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(projection.Total("after-broken"), 4);
  std::vector<kafka::Record> dead;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (dead.empty() && absl::Now() < deadline) dead = ReadToEnd(topics_.deadletter, kPartitions);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].key, "broken");
  EXPECT_EQ(dead[0].HeaderValue("dlq_consumer"), "test-feed");
}

// What HelplineReadModelBehind reads: a read model stuck on an event (its
// keys unreachable) keeps its feed's thread busy, and its lag, measured from
// another thread as the service's lag loop does, still grows.
TEST_F(EventSourcingKafkaTest, AStuckReadModelsLagGrowsAndFallsToZeroOnceItMovesOn) {
  auto processor = StartProcessor();
  auto sender = Sender();
  std::atomic<bool> stuck{true};
  prometheus::Registry registry;
  ConsumerMetrics metrics(registry);
  CounterProjection projection;
  EventFeedOptions feed_options{topics_.events, topics_.deadletter, "test-feed",
                                [&](google::protobuf::Message&) {
                                  return stuck.load() ? absl::UnavailableError("keys unreachable")
                                                      : absl::OkStatus();
                                },
                                &metrics};
  EventFeed feed(*kafka_, feed_options, [] { return std::make_unique<Event>(); }, projection);
  ASSERT_TRUE(feed.Start().ok());
  for (int i = 0; i < 5; ++i) {
    Command command = Increment("stuck", 1);
    ASSERT_TRUE(sender->Send(command, absl::Now() + absl::Seconds(30)).ok());
  }
  auto most = [&](const std::string& name) {
    double most = -1;
    for (const auto& family : registry.Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) most = std::max(most, metric.gauge.value);
    }
    return most;
  };
  absl::SleepFor(absl::Seconds(2));
  feed.ReportLag();
  const double seconds = most("helpline_consumer_lag_seconds");
  EXPECT_GE(most("helpline_consumer_lag_records"), 5) << "the five events wait";
  absl::SleepFor(absl::Seconds(2));
  feed.ReportLag();
  EXPECT_GE(most("helpline_consumer_lag_seconds"), seconds + 1.5) << "a stuck reader's lag grows";

  stuck = false;
  ASSERT_TRUE(feed.WaitUntilCurrent(absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(projection.Total("stuck"), 5);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    absl::SleepFor(absl::Milliseconds(200));
    feed.ReportLag();
  } while (most("helpline_consumer_lag_records") != 0 && absl::Now() < deadline);
  EXPECT_EQ(most("helpline_consumer_lag_records"), 0);
  EXPECT_EQ(most("helpline_consumer_lag_seconds"), 0);
}

// Writes 300 increments on 20 aggregates with snapshots every 40 events,
// restarts from the snapshots and compares with a replay of every event.
void EventSourcingKafkaTest::ExpectSnapshotRecoveryEqualsFullReplay(int* part_records) {
  options_.snapshots.every_events = 40;
  {
    auto processor = StartProcessor();
    auto sender = Sender();
    for (int i = 0; i < 300; ++i) {
      Command command = Increment(absl::StrCat("snap-", i % 20), 1 + i % 5);
      ASSERT_TRUE(sender->Send(command, absl::Now() + absl::Seconds(30)).ok());
    }
    processor->Stop();
  }
  std::vector<kafka::Record> snapshots = ReadToEnd(topics_.snapshots, kPartitions);
  int markers = 0;
  for (const auto& record : snapshots) {
    markers += record.key.rfind("snapshot-marker:", 0) == 0;
    *part_records += record.key.rfind("snapshot-part:", 0) == 0;
  }
  ASSERT_GT(markers, 0) << "snapshots were written";

  auto from_snapshot = StartProcessor();
  std::vector<std::string> digests;
  for (int p = 0; p < kPartitions; ++p) digests.push_back(from_snapshot->StateDigest(p));
  from_snapshot->Stop();

  // The same events without any snapshot: an empty snapshots topic.
  ProcessorOptions replay_only = options_;
  replay_only.topics.snapshots = UniqueName("no-snapshots");
  auto admin = kafka::Admin::Create(TestKafka());
  ASSERT_TRUE((*admin)->CreateTopics({{replay_only.topics.snapshots, kPartitions, 1, {}}},
                                     absl::Seconds(30)).ok());
  replay_only.snapshots.every_events = 1 << 30;
  auto full_replay = StartProcessor(replay_only, clock_);
  for (int p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(full_replay->StateDigest(p), digests[p]) << "partition " << p;
    EXPECT_FALSE(digests[p].empty());
  }
}

TEST_F(EventSourcingKafkaTest, SnapshotRecoveryEqualsFullReplay) {
  int parts = 0;
  ExpectSnapshotRecoveryEqualsFullReplay(&parts);
  EXPECT_EQ(parts, 0);
}

// An aggregate larger than a record (the ledger) is written in parts.
TEST_F(EventSourcingKafkaTest, SnapshotInPartsRecoversLikeFullReplay) {
  options_.snapshots.part_bytes = 48;
  int parts = 0;
  ExpectSnapshotRecoveryEqualsFullReplay(&parts);
  EXPECT_GT(parts, 40) << "every aggregate's snapshot was split";
}

TEST_F(EventSourcingKafkaTest, TimerDueDuringARestartFiresOnceAfterIt) {
  FakeClock clock;
  auto processor = StartProcessor(options_, clock);
  auto sender = Sender();
  Command schedule;
  schedule.mutable_meta()->set_aggregate_id("alarm-1");
  schedule.mutable_meta()->set_command_id(ids::NewUuidV7());
  *schedule.mutable_schedule_alarm()->mutable_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(clock.Now() + absl::Minutes(10)));
  ASSERT_EQ(sender->Send(schedule, absl::Now() + absl::Seconds(30))->code(), 0);
  processor->Stop();

  clock.Advance(absl::Minutes(11));  // due while nobody runs
  processor = StartProcessor(options_, clock);
  auto rings = [&] {
    int count = 0;
    for (const Event& event : AllEvents()) count += event.has_alarm_rang();
    return count;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (rings() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_EQ(rings(), 1);
  // Another restart and more traffic on the aggregate: still one ring.
  processor->Stop();
  processor = StartProcessor(options_, clock);
  Command after = Increment("alarm-1", 1);
  ASSERT_EQ(sender->Send(after, absl::Now() + absl::Seconds(30))->code(), 0);
  EXPECT_EQ(rings(), 1);
  std::vector<Event> events = AllEvents();
  ExpectContiguousVersions(events);
  EXPECT_EQ(events.size(), 3u);
}

TEST_F(EventSourcingKafkaTest, TwoProcessorsOnTheSamePartitionsWriteEachCommandOnce) {
  options_.static_partitions = {0, 1, 2};
  auto first = StartProcessor();
  auto second = StartProcessor();  // same transactional ids: fences the first
  auto sender = Sender();
  std::vector<std::string> acknowledged;
  absl::Mutex mutex;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 50; ++i) {
        Command command = Increment(absl::StrCat("shared-", i % 7), 1);
        Reply reply = SendUntilAnswered(*sender, command);
        if (reply.code() == 0) {
          absl::MutexLock lock(&mutex);
          acknowledged.push_back(command.meta().command_id());
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  // The first learns it is fenced when it next tries to commit, which can
  // come after the newer one has answered everything.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (first->TimesFenced() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_GT(first->TimesFenced(), 0) << "the newer processor fenced the first";
  ASSERT_EQ(acknowledged.size(), 200u);
  ExpectExactlyOnce(acknowledged, AllEvents());
}

TEST_F(EventSourcingKafkaTest, PartitionsMoveBetweenProcessorsInTheGroup) {
  options_.replica = "first";
  auto first = StartProcessor();
  EXPECT_EQ(first->OwnedPartitions().size(), static_cast<size_t>(kPartitions));
  auto sender = Sender();
  for (int i = 0; i < 30; ++i) {
    Command command = Increment(absl::StrCat("moving-", i % 6), 1);
    ASSERT_EQ(SendUntilAnswered(*sender, command).code(), 0);
  }
  options_.replica = "second";
  auto second = StartProcessor();
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline &&
         (first->OwnedPartitions().size() + second->OwnedPartitions().size() != kPartitions ||
          second->OwnedPartitions().empty() || !first->Ready() || !second->Ready())) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(second->OwnedPartitions().empty()) << "the group shared the partitions";
  for (int i = 0; i < 30; ++i) {
    Command command = Increment(absl::StrCat("moving-", i % 6), 1);
    ASSERT_EQ(SendUntilAnswered(*sender, command).code(), 0);
  }
  first->Stop();  // leaves the group: the second takes everything over
  for (int i = 0; i < 30; ++i) {
    Command command = Increment(absl::StrCat("moving-", i % 6), 1);
    ASSERT_EQ(SendUntilAnswered(*sender, command).code(), 0);
  }
  EXPECT_EQ(second->OwnedPartitions().size(), static_cast<size_t>(kPartitions));
  std::vector<Event> events = AllEvents();
  EXPECT_EQ(events.size(), 90u);
  ExpectContiguousVersions(events);
}

// Readiness must not flap on a rebalance: the replica that takes partitions
// over stays in service while it rebuilds them (a stuck rebuild would not).
TEST_F(EventSourcingKafkaTest, AReplicaStaysInServiceWhileItRebuildsPartitionsItTakesOver) {
  options_.replica = "first";
  auto first = StartProcessor();
  auto sender = Sender();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(SendUntilAnswered(*sender, Increment(absl::StrCat("taken-", i % 5), 1)).code(), 0);
  }
  options_.replica = "second";
  options_.rebuild_grace = absl::Seconds(30);
  auto second = StartProcessor();
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && !second->Ready()) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(second->Ready());

  std::atomic<bool> sampling{true};
  int rebuilding_samples = 0;
  int out_of_service_samples = 0;
  std::thread sampler([&] {
    while (sampling.load()) {
      rebuilding_samples += second->Ready() ? 0 : 1;
      out_of_service_samples += second->InService() ? 0 : 1;
      absl::SleepFor(absl::Microseconds(500));
    }
  });
  first->Stop();  // the second takes the first's partitions and rebuilds them
  deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline &&
         (second->OwnedPartitions().size() != static_cast<size_t>(kPartitions) || !second->Ready())) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  sampling.store(false);
  sampler.join();
  ASSERT_EQ(second->OwnedPartitions().size(), static_cast<size_t>(kPartitions));
  EXPECT_GT(rebuilding_samples, 0) << "the second replica rebuilt what it took over";
  EXPECT_EQ(out_of_service_samples, 0) << "a rebalance took the replica out of service";
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(SendUntilAnswered(*sender, Increment(absl::StrCat("taken-", i % 5), 1)).code(), 0);
  }
  std::vector<Event> events = AllEvents();
  EXPECT_EQ(events.size(), 40u);
  ExpectContiguousVersions(events);
}

TEST_F(EventSourcingKafkaTest, ReactorSendsEachReactionOnceEvenWhenEventsAreReadAgain) {
  auto processor = StartProcessor();
  auto sender = Sender();
  // Every increment of "source-*" is mirrored onto "mirror-*".
  TypedReaction<Event, Command> mirror([](const Event& event) {
    std::vector<Command> commands;
    const std::string& id = event.meta().aggregate_id();
    if (event.has_incremented() && id.rfind("source-", 0) == 0) {
      Command command;
      command.mutable_meta()->set_aggregate_id("mirror-" + id.substr(7));
      command.mutable_increment()->set_by(event.incremented().by());
      commands.push_back(command);
    }
    return commands;
  });
  ReactorOptions reactor_options{prefix_ + "counter.reactions", topics_.commands,
                                 topics_.deadletter};
  std::vector<Subscription> subscriptions = {{prefix_ + "counter.mirror", topics_.events, &mirror}};
  auto reactor = std::make_unique<Reactor>(*kafka_, reactor_options, subscriptions);
  ASSERT_TRUE(reactor->Start().ok());
  CounterProjection projection;
  EventFeed feed(*kafka_, {topics_.events, topics_.deadletter, "test-feed"},
                 [] { return std::make_unique<Event>(); }, projection);
  ASSERT_TRUE(feed.Start().ok());

  for (int i = 1; i <= 10; ++i) {
    Command command = Increment("source-1", i);
    ASSERT_EQ(sender->Send(command, absl::Now() + absl::Seconds(30))->code(), 0);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (projection.Total("mirror-1") < 55 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(projection.Total("mirror-1"), 55);

  // Replay: the reactor's group starts over from the first event.
  reactor->Stop();
  reactor.reset();
  {
    kafka::ConsumerOptions group;
    group.group_id = reactor_options.group;
    auto rewind = kafka::Consumer::Create(TestKafka(), group);
    ASSERT_TRUE(rewind.ok());
    std::vector<kafka::TopicPartitionOffset> start;
    for (int p = 0; p < kPartitions; ++p) start.push_back({topics_.events, p, 0});
    ASSERT_TRUE((*rewind)->Commit(start).ok());
  }
  reactor = std::make_unique<Reactor>(*kafka_, reactor_options, subscriptions);
  ASSERT_TRUE(reactor->Start().ok());
  deadline = absl::Now() + absl::Seconds(60);
  while (reactor->events_seen() < 20 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GE(reactor->events_seen(), 20) << "the reactor read the events again";
  // A command sent after the replay went through the same processor queue,
  // so its reply means the replayed commands were handled before it.
  Command marker = Increment("mirror-1", 1);
  ASSERT_EQ(SendUntilAnswered(*sender, marker).code(), 0);
  int mirror_events = 0;
  for (const Event& event : AllEvents()) mirror_events += event.meta().aggregate_id() == "mirror-1";
  EXPECT_EQ(mirror_events, 11) << "10 mirrored increments and the marker, nothing twice";
  reactor->Stop();
}

TEST_F(EventSourcingKafkaTest, KillNineMidBatchUnderLoadLosesAndDuplicatesNothing) {
  std::string log_file = ::testing::TempDir() + UniqueName("counter-processor") + ".log";
  auto spawn = [&] {
    std::vector<std::string> arguments = ::helpline::testing::KafkaFlags(TestKafka());
    arguments.insert(arguments.end(), {"--prefix", prefix_, "--partitions", "0,1,2"});
    auto child = std::make_unique<::helpline::testing::ChildProcess>(COUNTER_PROCESSOR_PATH,
                                                                     arguments, log_file);
    EXPECT_TRUE(child->Start());
    return child;
  };
  auto processor = spawn();
  ASSERT_TRUE(processor->WaitForOutput("ready", 60)) << processor->Output();
  auto sender = Sender();

  testing::IncrementLoad load(*sender, 8, "kill-", 17);
  // Each processor is killed only once it has taken some of the load, at a
  // different moment of its batches each time.
  auto takes_load = [&] {
    size_t before = load.acknowledged();
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (load.acknowledged() < before + 10 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return load.acknowledged() >= before + 10;
  };
  for (int kill = 0; kill < 12; ++kill) {
    ASSERT_TRUE(takes_load()) << "the load stopped after restart " << kill;
    absl::SleepFor(absl::Milliseconds(37 * (kill % 7)));
    processor->Signal(SIGKILL);
    processor = spawn();
  }
  EXPECT_TRUE(takes_load()) << "the load stopped after the last restart";
  std::vector<std::string> acknowledged = load.Stop();
  processor->Signal(SIGTERM);

  ExpectExactlyOnce(acknowledged, AllEvents());
}

// A command that moves an aggregate's alarm later, decided in the same batch
// as the alarm falling due: the alarm rings at its new time.
TEST_F(EventSourcingKafkaTest, AlarmMovedLaterInTheBatchWhereItFellDueStillRings) {
  FakeClock clock;
  options_.idle_poll = absl::Seconds(3);  // the processor waits for the alarm, not a tick
  auto processor = StartProcessor(options_, clock);
  auto sender = Sender();
  auto schedule = [&](absl::Duration from_now) {
    Command command;
    command.mutable_meta()->set_aggregate_id("alarm-moved");
    command.mutable_meta()->set_command_id(ids::NewUuidV7());
    *command.mutable_schedule_alarm()->mutable_at() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            absl::ToUnixNanos(clock.Now() + from_now));
    return command;
  };
  Command first = schedule(absl::Minutes(10));
  ASSERT_EQ(sender->Send(first, absl::Now() + absl::Seconds(30))->code(), 0);
  absl::SleepFor(absl::Milliseconds(300));  // the processor waits for the alarm again

  clock.Advance(absl::Minutes(11));  // due, and a command moves it on before it rings
  Command later = schedule(absl::Minutes(10));
  ASSERT_EQ(sender->Send(later, absl::Now() + absl::Seconds(30))->code(), 0);
  auto rings = [&] {
    int count = 0;
    for (const Event& event : AllEvents()) count += event.has_alarm_rang();
    return count;
  };
  EXPECT_EQ(rings(), 0) << "moved before it rang";

  clock.Advance(absl::Minutes(11));
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (rings() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(rings(), 1) << "the moved alarm rang at its new time";
}

// A snapshot chunk the broker refused (here: a record above the topic's
// limit) puts its aggregates back; the next snapshot writes them, and a
// rebuild from it equals a replay of every event.
TEST_F(EventSourcingKafkaTest, AggregateOfAFailedSnapshotChunkIsInTheNextSnapshot) {
  const std::string prefix = UniqueName("es-snap") + ".";
  CreateServiceTopics("counter", prefix, 1);
  ProcessorOptions options = options_;
  options.service = prefix + "counter";
  options.topics = ServiceTopics::For("counter", prefix);
  options.snapshots.every_events = 40;
  options.snapshots.part_bytes = 1000;  // "big" is written in parts ...
  auto admin = kafka::Admin::Create(TestKafka());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->AlterTopicConfig(options.topics.snapshots, {{"max.message.bytes", "900"}},
                                         absl::Seconds(30)).ok());  // ... that the topic refuses
  auto processor = StartProcessor(options, clock_);
  auto sender = CommandSender::Create(*kafka_, {options.topics, ""});
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (int i = 0; i < 45; ++i) {
    Command command = Increment("big", 1);
    ASSERT_EQ((*sender)->Send(command, absl::Now() + absl::Seconds(30))->code(), 0);
  }
  EXPECT_TRUE(ReadToEnd(options.topics.snapshots, 1).empty()) << "the first snapshot failed";
  ASSERT_TRUE((*admin)->AlterTopicConfig(options.topics.snapshots,
                                         {{"max.message.bytes", "1048588"}}, absl::Seconds(30))
                  .ok());
  // Once the broker applies it, a large record goes through (recovery skips
  // this one: it is no snapshot record).
  absl::Time applied_by = absl::Now() + absl::Seconds(30);
  while (!kafka_->producer->ProduceAndWait({options.topics.snapshots, 0, "probe",
                                             std::string(4000, '\xff'), {}})
              .status.ok()) {
    ASSERT_LT(absl::Now(), applied_by) << "the topic never took large records";
    absl::SleepFor(absl::Milliseconds(100));
  }
  for (int i = 0; i < 45; ++i) {  // "big" is left alone from here on
    Command command = Increment(absl::StrCat("small-", i % 5), 1);
    ASSERT_EQ((*sender)->Send(command, absl::Now() + absl::Seconds(30))->code(), 0);
  }
  auto markers = [&] {
    int count = 0;
    for (const auto& record : ReadToEnd(options.topics.snapshots, 1)) {
      count += record.key.rfind("snapshot-marker:", 0) == 0;
    }
    return count;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (markers() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(200));
  ASSERT_GE(markers(), 1) << "a later snapshot was written";
  processor->Stop();

  auto from_snapshot = StartProcessor(options, clock_);
  std::string digest = from_snapshot->StateDigest(0);
  from_snapshot->Stop();
  ProcessorOptions replay_only = options;
  replay_only.topics.snapshots = UniqueName("no-snapshots");
  ASSERT_TRUE((*admin)->CreateTopics({{replay_only.topics.snapshots, 1, 1, {}}}, absl::Seconds(30)).ok());
  replay_only.snapshots.every_events = 1 << 30;
  auto full_replay = StartProcessor(replay_only, clock_);
  EXPECT_EQ(full_replay->StateDigest(0), digest);
}

// A replica joining takes partitions from the one that runs; the partitions
// that stay with it are never revoked or rebuilt, and decide throughout.
TEST_F(EventSourcingKafkaTest, PartitionsThatStayKeepDecidingWhileAReplicaJoins) {
  options_.replica = "first";
  auto first = StartProcessor();
  ASSERT_EQ(first->OwnedPartitions().size(), static_cast<size_t>(kPartitions));
  auto sender = Sender();
  testing::IncrementLoad load(*sender, 4, "stay-", 13);
  std::atomic<bool> sampling{true};
  std::vector<std::vector<int32_t>> owned_samples;
  int not_ready_samples = 0;
  std::thread sampler([&] {
    while (sampling.load()) {
      owned_samples.push_back(first->OwnedPartitions());
      not_ready_samples += first->Ready() ? 0 : 1;
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  absl::SleepFor(absl::Milliseconds(500));
  size_t acknowledged_before_join = load.acknowledged();
  ProcessorOptions second_options = options_;
  second_options.replica = "second";
  auto second = StartProcessor(second_options, clock_);
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && (second->OwnedPartitions().empty() ||
                                    first->OwnedPartitions().size() +
                                            second->OwnedPartitions().size() != kPartitions ||
                                    !second->Ready())) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::SleepFor(absl::Milliseconds(500));
  sampling.store(false);
  sampler.join();
  std::vector<std::string> acknowledged = load.Stop();

  std::vector<int32_t> kept = first->OwnedPartitions();
  ASSERT_FALSE(kept.empty());
  ASSERT_FALSE(second->OwnedPartitions().empty()) << "the second replica got partitions";
  for (const std::vector<int32_t>& sample : owned_samples) {
    for (int32_t partition : kept) {
      ASSERT_NE(std::find(sample.begin(), sample.end(), partition), sample.end())
          << "partition " << partition << " stayed with the first replica but was taken away";
    }
  }
  EXPECT_EQ(not_ready_samples, 0) << "the first replica rebuilt partitions it kept";
  EXPECT_GT(acknowledged.size(), acknowledged_before_join) << "commands were answered during the join";
  ExpectExactlyOnce(acknowledged, AllEvents());
}

// Before reactions shared a consumer group, each had its own, named after
// it: the shared group starts where those left off, not at the beginning.
TEST_F(EventSourcingKafkaTest, ReactionsContinueWhereTheirOwnGroupsLeftOff) {
  auto processor = StartProcessor();
  auto sender = Sender();
  for (int i = 1; i <= 10; ++i) {
    Command command = Increment("source-old", i);
    ASSERT_EQ(sender->Send(command, absl::Now() + absl::Seconds(30))->code(), 0);
  }
  const std::string reaction_name = prefix_ + "counter.mirror";
  {
    // The reaction's own group had handled all ten.
    kafka::ConsumerOptions group;
    group.group_id = reaction_name;
    group.overrides = {{"group.protocol", "classic"}};
    auto old_group = kafka::Consumer::Create(TestKafka(), group);
    ASSERT_TRUE(old_group.ok());
    std::vector<kafka::TopicPartitionOffset> ends;
    for (int p = 0; p < kPartitions; ++p) {
      auto watermarks = (*old_group)->WatermarkOffsets(topics_.events, p, absl::Seconds(10));
      ASSERT_TRUE(watermarks.ok());
      ends.push_back({topics_.events, p, watermarks->second});
    }
    ASSERT_TRUE((*old_group)->Commit(ends).ok());
  }
  TypedReaction<Event, Command> mirror([](const Event& event) {
    std::vector<Command> commands;
    if (event.has_incremented() && event.meta().aggregate_id() == "source-new") {
      Command command;
      command.mutable_meta()->set_aggregate_id("mirror-new");
      command.mutable_increment()->set_by(event.incremented().by());
      commands.push_back(command);
    }
    return commands;
  });
  Reactor reactor(*kafka_, {prefix_ + "counter.reactions", topics_.commands, topics_.deadletter},
                  {{reaction_name, topics_.events, &mirror}});
  ASSERT_TRUE(reactor.Start().ok());
  for (int i = 1; i <= 5; ++i) {
    Command command = Increment("source-new", i);
    ASSERT_EQ(sender->Send(command, absl::Now() + absl::Seconds(30))->code(), 0);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  int mirrored = 0;
  while (absl::Now() < deadline && mirrored < 5) {
    mirrored = 0;
    for (const Event& event : AllEvents()) mirrored += event.meta().aggregate_id() == "mirror-new";
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(mirrored, 5);
  // The mirrored commands' own events are read too; the ten old ones never.
  while (absl::Now() < deadline && reactor.events_seen() < 10) absl::SleepFor(absl::Milliseconds(50));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(reactor.events_seen(), 10) << "5 new sources and their 5 mirrors";
  reactor.Stop();
}

// The producer is the process's: a sender that goes away while Kafka cannot
// take its commands answers each waiting call once, and the producer's late
// delivery failures reach nothing that is gone.
TEST_F(EventSourcingKafkaTest, SenderDestroyedWhileKafkaCannotTakeCommandsAnswersEachCallOnce) {
  kafka::ClientConfig quick = TestKafka();
  quick.properties["message.timeout.ms"] = "1500";
  auto kafka = kafka::SharedClients::Create(quick);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  auto sender = CommandSender::Create(**kafka, {topics_, ""});
  ASSERT_TRUE(sender.ok()) << sender.status();
  auto admin = kafka::Admin::Create(TestKafka());
  ASSERT_TRUE((*admin)->DeleteTopics({topics_.commands}, absl::Seconds(30)).ok());
  absl::Mutex mutex;
  std::map<std::string, int> answers;
  std::map<std::string, absl::StatusCode> codes;
  for (int i = 0; i < 50; ++i) {
    Command command = Increment(absl::StrCat("gone-", i), 1);
    std::string id = command.meta().command_id();
    (*sender)->SendAsync(command, *command.mutable_meta(), absl::Now() + absl::Seconds(60),
                         [&, id](absl::StatusOr<Reply> reply) {
                           absl::MutexLock lock(&mutex);
                           ++answers[id];
                           codes[id] = reply.status().code();
                         });
  }
  sender->reset();
  absl::SleepFor(absl::Seconds(3));  // past the producer's delivery timeout
  absl::MutexLock lock(&mutex);
  ASSERT_EQ(answers.size(), 50u);
  for (const auto& [id, count] : answers) {
    EXPECT_EQ(count, 1) << id;
    EXPECT_EQ(codes[id], absl::StatusCode::kUnavailable) << id;
  }
}

}  // namespace
}  // namespace helpline::es
