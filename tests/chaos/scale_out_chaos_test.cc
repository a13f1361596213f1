// Scale-out on one machine: three replicas of every service on one Kafka,
// under load (tools/load), while replicas leave and join: one replica of
// every service killed with SIGKILL, then started again, then each replica
// restarted in turn (a rolling restart). Processors hand partitions over one
// at a time; fronts, reactors, dispatchers, workers and sweepers run in
// every replica at once. Afterwards the event streams show that nothing
// went wrong (tests/chaos/journey_invariants.h), and the report says how
// long a command waited for its processor at worst, per service.
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/chaos/journey_invariants.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"
#include "tools/load/load_generator.h"

namespace helpline {
namespace {

using ::helpline::testing::Platform;
using ::helpline::testing::ServiceProcess;

constexpr int kReplicas = 3;
const char* const kServices[] = {"identity", "catalog", "matching", "sessions", "payments"};

TEST(ScaleOutChaosTest, ReplicasLeaveAndJoinUnderLoadAndNothingIsLostOrDoubled) {
  Platform::Options options;
  options.replicas = kReplicas;
  options.partitions = 6;
  options.sessions = true;
  options.payments = true;
  options.matching_config = {
      {"matching", {{"offer_window", "5s"}, {"request_wait_limit", "30s"}}}};
  options.sessions_config = {
      {"sessions", {{"help_now_join_window", "45s"}, {"grace_period", "15s"}}}};
  Platform platform;
  ASSERT_TRUE(platform.Start("scale", options));
  const client::Targets targets{platform.Target("identity"), platform.Target("catalog"),
                                platform.Target("matching"), platform.Target("sessions"),
                                platform.Target("payments")};

  load::LoadOptions load_options = chaos::ChaosLoad(targets, "scale");
  load::LoadGenerator load(load_options);
  absl::Status set_up = load.Setup();
  ASSERT_TRUE(set_up.ok()) << set_up;

  std::atomic<bool> stop{false};
  load::LoadReport report;
  std::thread runner([&] { report = load.Run(absl::Minutes(30), stop); });
  const absl::Time started = absl::Now();
  auto goes_on_after = [&](const std::string& change) {
    EXPECT_TRUE(chaos::JourneysGoOnAfter(load, change)) << "journeys stopped after " << change;
  };
  goes_on_after("start");

  // One replica of every service dies; the others take its partitions.
  for (const char* service : kServices) platform.Replicas(service)[kReplicas - 1]->Kill();
  goes_on_after("kill -9 one replica of every service");
  // It comes back and takes some partitions over again.
  for (const char* service : kServices) {
    ASSERT_TRUE(platform.Replicas(service)[kReplicas - 1]->Start()) << service;
  }
  goes_on_after("the killed replicas started again");
  // A rolling restart: each replica stops cleanly and starts again, in turn.
  for (const char* service : kServices) {
    for (ServiceProcess* replica : platform.Replicas(service)) {
      EXPECT_TRUE(replica->Stop()) << service << " did not stop cleanly";
      ASSERT_TRUE(replica->Start()) << service << " did not come back";
    }
    goes_on_after(absl::StrCat("rolling restart of ", service));
  }
  stop = true;
  runner.join();
  std::cout << report.Text() << std::flush;
  std::cout << "scale-out: replicas=" << kReplicas
            << " journeys_completed=" << report.journeys_completed
            << " seconds=" << absl::ToDoubleSeconds(absl::Now() - started) << std::endl;
  EXPECT_GT(report.journeys_completed, 20);

  const kafka::ClientConfig kafka = ::helpline::testing::TestKafka();
  client::Client client(targets);
  chaos::ExpectJourneysHeldTogether(kafka, platform.prefix(), platform.partitions(), report, client,
                                    ::helpline::testing::kPlatformAdminEmail,
                                    ::helpline::testing::kPlatformAdminPassword);
  for (const chaos::CommandWaits& waits :
       chaos::MeasureCommandWaits(kafka, platform.prefix(), platform.partitions())) {
    std::cout << "scale-out: " << waits.service << " commands=" << waits.commands
              << " wait_p99_ms=" << waits.p99_ms << " longest_wait_ms=" << waits.longest_ms
              << std::endl;
  }
  EXPECT_TRUE(platform.Stop());
}

}  // namespace
}  // namespace helpline
