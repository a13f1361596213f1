// The whole platform under load (tools/load: people and experts running the
// journey) while its parts fail on purpose: each service killed with
// SIGKILL and restarted in turn, the Kafka broker restarted, Redis
// restarted, a service frozen with SIGSTOP past its transaction timeout.
// Afterwards the event streams themselves must show that nothing went
// wrong: every acknowledged write is there exactly once, aggregates have no
// gaps or doubles, every help request ended, no session was captured twice,
// no expert was in two sessions at once, the ledger reconciles, and the
// read models answer the same after every service rebuilt them from the log.
//
// HL_CHAOS_ROUNDS (default 1) repeats the round of faults.
#include <cstdlib>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/chaos/journey_invariants.h"
#include "tests/support/local_stack.h"
#include "tests/support/platform.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_stack.h"
#include "tools/load/load_generator.h"

namespace helpline {
namespace {

using ::helpline::testing::LocalStack;
using ::helpline::testing::Platform;
using ::helpline::testing::RedisServerProcess;
using ::helpline::testing::ServiceProcess;

int Rounds() {
  const char* rounds = std::getenv("HL_CHAOS_ROUNDS");
  return rounds == nullptr ? 1 : std::max(1, std::atoi(rounds));
}

TEST(JourneyChaosTest, NothingAcknowledgedIsLostWhileEveryPartFailsInTurn) {
  LocalStack stack;
  ASSERT_TRUE(stack.Start()) << stack.last_output();
  RedisServerProcess redis(::helpline::testing::PickFreePort());
  ASSERT_TRUE(redis.Start());
  redis::ClientOptions redis_options;
  redis_options.port = redis.port();

  Platform::Options options;
  options.sessions = true;
  options.payments = true;
  options.stack_dir = stack.dir();
  options.redis = redis_options;
  options.matching_config = {
      {"matching", {{"offer_window", "5s"}, {"request_wait_limit", "30s"}}}};
  options.sessions_config = {
      {"sessions", {{"help_now_join_window", "45s"}, {"grace_period", "15s"}}}};
  Platform platform;
  ASSERT_TRUE(platform.Start("chaos", options));
  auto target = [](ServiceProcess& service) { return absl::StrCat("127.0.0.1:", service.port()); };
  const client::Targets targets{target(platform.identity()), target(platform.catalog()),
                                target(platform.matching()), target(platform.sessions()),
                                target(platform.payments())};

  load::LoadOptions load_options = chaos::ChaosLoad(targets, "chaos");
  load::LoadGenerator load(load_options);
  absl::Status set_up = load.Setup();
  ASSERT_TRUE(set_up.ok()) << set_up;

  std::atomic<bool> stop{false};
  load::LoadReport report;
  std::thread runner([&] { report = load.Run(absl::Minutes(30), stop); });
  const absl::Time started = absl::Now();
  // Journeys go on after each fault: a few complete within two minutes.
  auto goes_on_after = [&](const std::string& fault) {
    EXPECT_TRUE(chaos::JourneysGoOnAfter(load, fault)) << "journeys stopped after " << fault;
  };
  goes_on_after("start");
  for (int round = 1; round <= Rounds(); ++round) {
    for (auto [name, service] : std::vector<std::pair<std::string, ServiceProcess*>>{
             {"identity", &platform.identity()},
             {"catalog", &platform.catalog()},
             {"matching", &platform.matching()},
             {"sessions", &platform.sessions()},
             {"payments", &platform.payments()}}) {
      service->Kill();
      ASSERT_TRUE(service->Start()) << name << " did not come back";
      goes_on_after(absl::StrCat("round ", round, ": kill -9 ", name));
    }
    ASSERT_TRUE(stack.Stop()) << stack.last_output();
    ASSERT_TRUE(stack.Start()) << stack.last_output();
    goes_on_after(absl::StrCat("round ", round, ": Kafka broker restarted"));
    redis.Kill();
    ASSERT_TRUE(redis.Start());
    goes_on_after(absl::StrCat("round ", round, ": Redis restarted (presence lost)"));
    // Past the processor's 10 s transaction timeout: the broker aborts its
    // transaction, and the thawed producer is fenced.
    platform.payments().Pause();
    absl::SleepFor(absl::Seconds(15));
    platform.payments().Resume();
    goes_on_after(absl::StrCat("round ", round, ": payments frozen 15 s (SIGSTOP)"));
  }
  stop = true;
  runner.join();
  std::cout << report.Text() << std::flush;
  std::cout << "chaos: rounds=" << Rounds() << " journeys_completed=" << report.journeys_completed
            << " seconds=" << absl::ToDoubleSeconds(absl::Now() - started) << std::endl;
  EXPECT_GT(report.journeys_completed, 20);

  client::Client client(targets);
  chaos::ExpectJourneysHeldTogether(stack.Kafka(), platform.prefix(), platform.partitions(),
                                    report, client, ::helpline::testing::kPlatformAdminEmail,
                                    ::helpline::testing::kPlatformAdminPassword);

  // Read models rebuilt from the log answer as the ones that lived through it.
  std::vector<std::string> before = chaos::AskReadModels(client, report);
  for (ServiceProcess* service : {&platform.payments(), &platform.sessions(),
                                  &platform.matching(), &platform.catalog(),
                                  &platform.identity()}) {
    EXPECT_TRUE(service->Stop());
  }
  for (ServiceProcess* service : {&platform.identity(), &platform.catalog(),
                                  &platform.matching(), &platform.sessions(),
                                  &platform.payments()}) {
    ASSERT_TRUE(service->Start());
  }
  std::vector<std::string> after = chaos::AskReadModels(client, report);
  EXPECT_EQ(before, after);
  EXPECT_TRUE(platform.Stop());
}

}  // namespace
}  // namespace helpline
