// The runtime rides out a restart of the Kafka broker in the middle of load:
// no manual action, every acknowledged command written exactly once. The test
// runs a broker of its own, since it stops it.
#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/testing/counter_commands.h"
#include "tests/support/local_stack.h"
#include "tests/support/test_stack.h"

namespace helpline::es {
namespace {

TEST(BrokerRestartKafkaTest, LoadContinuesAcrossABrokerRestartExactlyOnce) {
  ::helpline::testing::LocalStack stack;
  ASSERT_TRUE(stack.Start()) << stack.last_output();
  kafka::ClientConfig client = stack.Kafka();
  const std::string prefix = ::helpline::testing::UniqueName("restart") + ".";
  ::helpline::testing::CreateServiceTopics(client, "counter", prefix, 3);

  ProcessorOptions options;
  options.service = prefix + "counter";
  options.topics = ServiceTopics::For("counter", prefix);
  options.static_partitions = {0, 1, 2};
  SystemClock clock;
  Processor processor(client, options, testing::CounterType(), clock, nullptr);
  ASSERT_TRUE(processor.Start().ok());
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!processor.Ready() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(processor.Ready());
  auto sender = CommandSender::Create(client, {options.topics, ""});
  ASSERT_TRUE(sender.ok()) << sender.status();

  std::atomic<bool> load_done{false};
  absl::Mutex mutex;
  std::vector<std::string> acknowledged;
  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !load_done.load(); ++i) {
        auto command = testing::Increment(absl::StrCat("restart-", (c * 13 + i) % 11), 1,
                                          ids::CommandId(absl::StrCat("client-", c), std::to_string(i)));
        runtime::v1::Reply reply = testing::SendUntilAnswered(**sender, command);
        ASSERT_EQ(reply.code(), 0) << reply.message();
        absl::MutexLock lock(&mutex);
        acknowledged.push_back(command.meta().command_id());
      }
    });
  }
  auto acknowledged_count = [&] {
    absl::MutexLock lock(&mutex);
    return acknowledged.size();
  };
  absl::SleepFor(absl::Seconds(1));
  size_t before_restart = acknowledged_count();
  ASSERT_TRUE(stack.Stop()) << stack.last_output();
  ASSERT_TRUE(stack.Start()) << stack.last_output();
  // Load goes on by itself once the broker is back.
  deadline = absl::Now() + absl::Seconds(90);
  size_t after_restart = acknowledged_count();
  while (acknowledged_count() < after_restart + 200 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  load_done.store(true);
  for (auto& thread : clients) thread.join();
  EXPECT_GT(before_restart, 0u);
  EXPECT_GE(acknowledged.size(), after_restart + 200) << "commands were acknowledged after the restart";
  testing::ExpectExactlyOnce(
      acknowledged, testing::Events(::helpline::testing::ReadToEnd(client, options.topics.events, 3)));
  processor.Stop();
}

}  // namespace
}  // namespace helpline::es
