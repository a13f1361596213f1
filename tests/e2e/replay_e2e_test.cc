// Determinism, proven on what really happened: the guided demo's journey and
// a minute of the load's journeys run through the five services, then
// helpline-replay decides every recorded command and timer again in process
// and must write every recorded event exactly as the services wrote it;
// helpline-whatif then replays the same demand under another policy.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"
#include "tools/demo/journey.h"
#include "tools/load/load_generator.h"

namespace helpline {
namespace {

using ::helpline::testing::Platform;

constexpr double kClockRate = 60;

// Runs a tool with the platform's Kafka (as admin); its standard output.
std::string RunTool(std::vector<std::string> words, const std::string& prefix, int& exit_code) {
  words.push_back("--topic-prefix");
  words.push_back(prefix);
  for (std::string& flag : ::helpline::testing::KafkaFlags(::helpline::testing::StackKafka(
           ::helpline::testing::TestStackDir(), "admin"))) {
    words.push_back(std::move(flag));
  }
  std::string command;
  for (const std::string& word : words) absl::StrAppend(&command, "'", word, "' ");
  FILE* pipe = popen(absl::StrCat(command, "2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return "";
  std::string out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

void Say(const std::string& what) {
  std::cout << absl::FormatTime("%H:%M:%S ", absl::Now(), absl::LocalTimeZone()) << what
            << std::endl;
}

TEST(ReplayE2eTest, TheDemoAndTheLoadReDecideExactlyAsRecorded) {
  Platform::Options options;
  options.sessions = true;
  options.payments = true;
  options.clock_rate = kClockRate;
  options.matching_config = {
      {"matching", {{"offer_window", "3m"}, {"request_wait_limit", "2h"}, {"match_hold", "1h"}}}};
  options.sessions_config = {{"sessions", {{"help_now_join_window", "1h"}}}};
  options.payments_config = {
      {"payments", {{"refund_window", "10m"}, {"payout_batch_interval", "167h"}}}};
  Platform platform;
  ASSERT_TRUE(platform.Start("replay", options));
  auto at = [](::helpline::testing::ServiceProcess& service) {
    return absl::StrCat("127.0.0.1:", service.port());
  };
  const client::Targets targets{at(platform.identity()), at(platform.catalog()),
                                at(platform.matching()), at(platform.sessions()),
                                at(platform.payments())};

  Say("platform up; the demo's journey");
  client::Client client(targets);
  demo::JourneyOptions journey_options;
  journey_options.admin_email = ::helpline::testing::kPlatformAdminEmail;
  journey_options.admin_password = ::helpline::testing::kPlatformAdminPassword;
  journey_options.clock_rate = kClockRate;
  journey_options.refund_window = absl::Minutes(10);
  journey_options.run_tag = "replay";
  std::vector<std::string> narration;
  demo::Journey journey(client, journey_options,
                        [&](const std::string& line) { narration.push_back(line); });
  ASSERT_TRUE(journey.Seed().ok());
  absl::StatusOr<demo::JourneyReport> report = journey.Run();
  ASSERT_TRUE(report.ok()) << report.status() << "\n" << absl::StrJoin(narration, "\n");

  // The demo's sponsor program paid Cleo's session from its budget.
  int sponsors_exit = -1;
  nlohmann::json sponsors = nlohmann::json::parse(
      RunTool({HELPLINE_SPONSORS_TOOL, "--json"}, platform.prefix(), sponsors_exit), nullptr,
      /*allow_exceptions=*/false);
  ASSERT_FALSE(sponsors.is_discarded());
  EXPECT_EQ(sponsors_exit, 0);
  ASSERT_EQ(sponsors["programs"].size(), 1u) << sponsors.dump(2);
  const nlohmann::json& program = sponsors["programs"][0];
  EXPECT_EQ(program["sessions_paid"], 1) << program.dump();
  EXPECT_EQ(program["spent_minor"],
            report->sponsor_spent_after_minor - report->sponsor_spent_before_minor);
  EXPECT_EQ(program["reserved_minor"], 0) << "the session is over: nothing held";
  EXPECT_EQ(program["budget_left_minor"].get<int64_t>(),
            program["budget_funded_minor"].get<int64_t>() - program["spent_minor"].get<int64_t>());
  EXPECT_FALSE(program["runs_out_on"].is_null()) << "spent this week: a date";

  Say("the load's journeys");
  load::LoadOptions load_options;
  load_options.targets = targets;
  load_options.admin_email = ::helpline::testing::kPlatformAdminEmail;
  load_options.admin_password = ::helpline::testing::kPlatformAdminPassword;
  load_options.clock_rate = kClockRate;
  load_options.run_tag = "replay-load";
  load_options.experts = 4;
  load_options.people = 4;
  load_options.journeys_per_second = 2;
  // Offers that run out (3 s on this clock) fire matching's timers.
  load_options.unanswered_offer_share = 0.2;
  load::LoadGenerator load(load_options);
  ASSERT_TRUE(load.Setup().ok());
  std::atomic<bool> stop{false};
  load::LoadReport load_report = load.Run(absl::Seconds(30), stop);
  ASSERT_GT(load_report.journeys_completed, 10) << load_report.Text();
  ASSERT_GT(load_report.offers_unanswered, 0) << load_report.Text();

  Say("helpline-replay");
  int exit_code = -1;
  const std::string out = RunTool({HELPLINE_REPLAY_TOOL, "--json"}, platform.prefix(), exit_code);
  nlohmann::json replay = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(replay.is_discarded()) << "helpline-replay printed no JSON: " << out;
  EXPECT_EQ(exit_code, 0) << out;
  EXPECT_EQ(replay["divergences"], 0) << replay.dump(2);
  ASSERT_EQ(replay["services"].size(), 5u);
  for (const nlohmann::json& service : replay["services"]) {
    EXPECT_TRUE(service["divergences"].empty()) << service.dump(2);
    EXPECT_GT(service["commands"].get<int64_t>(), 0) << service.dump();
    EXPECT_GT(service["events_reproduced"].get<int64_t>(), 0) << service.dump();
    // Everything was recorded in this test: every event's command is held.
    EXPECT_EQ(service["events_applied_unchecked"], 0) << service.dump();
  }
  // Timers too: the offers that ran out.
  int64_t timers = 0;
  for (const nlohmann::json& service : replay["services"]) timers += service["timers"].get<int64_t>();
  EXPECT_GT(timers, 0);
  std::cout << "replay: " << replay["events_reproduced"] << " events re-decided at "
            << replay["events_per_sec"] << " events/s" << std::endl;

  Say("helpline-whatif");
  // The same demand with a tenth as commission and a 1 ms offer window
  // (17 µs of real time here): nobody answers that fast.
  int whatif_exit = -1;
  const std::string whatif_out = RunTool(
      {HELPLINE_WHATIF_TOOL, "--json", "--commission", "1000", "--offer-window", "1ms"},
      platform.prefix(), whatif_exit);
  nlohmann::json whatif = nlohmann::json::parse(whatif_out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(whatif.is_discarded()) << "helpline-whatif printed no JSON: " << whatif_out;
  EXPECT_EQ(whatif_exit, 0);
  EXPECT_EQ(whatif["policies"]["recorded"]["offer_window_seconds"], 180) << "matching's 3m";
  EXPECT_EQ(whatif["policies"]["recorded"]["commission"]["default_bps"], 2000);
  const nlohmann::json& as_recorded = whatif["outcomes"]["recorded"];
  const nlohmann::json& simulated = whatif["outcomes"]["simulated_recorded_policy"];
  const nlohmann::json& what_if = whatif["outcomes"]["simulated_what_if"];
  // The demo's help request and every journey the load completed were matched.
  EXPECT_GE(as_recorded["matched"].get<int64_t>(), load_report.journeys_completed + 1)
      << as_recorded.dump();
  EXPECT_GT(as_recorded["revenue_minor"].get<int64_t>(), 0);
  // Every split sums, in what happened and in every simulated run.
  auto split_sums = [](const nlohmann::json& figures, size_t i) {
    auto at = [&](const char* key) {
      const nlohmann::json& value = figures.contains("per_run") ? figures["per_run"][key][i]
                                                                : figures[key];
      return value.get<int64_t>();
    };
    EXPECT_EQ(at("commission_minor") + at("expert_earnings_minor"),
              at("revenue_minor") - at("refunded_minor"))
        << figures.dump();
    return at("commission_minor") * 10 - (at("revenue_minor") - at("refunded_minor"));
  };
  split_sums(as_recorded, 0);
  ASSERT_EQ(whatif["runs"], 5);
  for (size_t run = 0; run < 5; ++run) {
    split_sums(simulated, run);
    // A tenth of what was kept, each session rounded half up.
    EXPECT_LE(std::abs(split_sums(what_if, run)),
              5 * what_if["per_run"]["sessions"][run].get<int64_t>())
        << what_if.dump();
  }
  EXPECT_EQ(simulated["requests"], as_recorded["requests"]);
  EXPECT_GT(simulated["matched"].get<int64_t>(), as_recorded["matched"].get<int64_t>() / 2)
      << simulated.dump();
  EXPECT_LT(what_if["matched"].get<int64_t>(), simulated["matched"].get<int64_t>())
      << what_if.dump();
  EXPECT_TRUE(platform.Stop());
}

}  // namespace
}  // namespace helpline
