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
  SystemClock clock;
  Processor processor(client, options, testing::CounterType(), clock, nullptr);
  ASSERT_TRUE(processor.Start().ok());
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!processor.Ready() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(processor.Ready());
  auto kafka = kafka::SharedClients::Create(client);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  auto sender = CommandSender::Create(**kafka, {options.topics, ""});
  ASSERT_TRUE(sender.ok()) << sender.status();

  testing::IncrementLoad load(**sender, 6, "restart-", 11);
  deadline = absl::Now() + absl::Seconds(60);  // a new broker's first transaction is slow
  while (load.acknowledged() < 50 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  size_t before_restart = load.acknowledged();
  ASSERT_TRUE(stack.Stop()) << stack.last_output();
  ASSERT_TRUE(stack.Start()) << stack.last_output();
  // Load goes on by itself once the broker is back.
  deadline = absl::Now() + absl::Seconds(90);
  size_t after_restart = load.acknowledged();
  while (load.acknowledged() < after_restart + 200 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::vector<std::string> acknowledged = load.Stop();
  EXPECT_GT(before_restart, 0u);
  EXPECT_GE(acknowledged.size(), after_restart + 200) << "commands were acknowledged after the restart";
  testing::ExpectExactlyOnce(
      acknowledged, testing::Events(::helpline::testing::ReadToEnd(client, options.topics.events, 3)));
  processor.Stop();
}

}  // namespace
}  // namespace helpline::es
