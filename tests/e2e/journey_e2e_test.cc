// The journey of docs/architecture.md §1 (tools/demo/journey, the guided demo's) against
// the five services as processes on the test run's Kafka and Redis, on a
// clock 60 times faster (a minute a second): a paid session billed per
// minute with the exact split, the review in the expert's rating in search,
// a sponsored session free for the person, a refund reversing both
// postings, a payout emptying the available earnings, the ledger summing to
// zero and reconciling.
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "helpline/payments/v1/events.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/eventsourcing/topics.h"
#include "tests/support/livekit_server.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"
#include "tools/demo/journey.h"
#include "tools/events/event_records.h"
#include "tools/events/events_tool.h"

namespace helpline {
namespace {

using ::helpline::testing::Platform;

// What analysts read with (deploy/topics.json's "analyst"): every events topic, nothing else.
kafka::ClientConfig AnalystKafka() {
  return ::helpline::testing::StackKafka(::helpline::testing::TestStackDir(), "analyst");
}

class JourneyE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Platform::Options options;
    options.sessions = true;
    options.payments = true;
    options.clock_rate = kClockRate;
    // Windows long enough for a test's real seconds.
    options.matching_config = {
        {"matching", {{"offer_window", "10m"}, {"request_wait_limit", "2h"}, {"match_hold", "1h"}}}};
    options.sessions_config = {{"sessions", {{"help_now_join_window", "1h"}}}};
    options.payments_config = {
        {"payments", {{"refund_window", "10m"}, {"payout_batch_interval", "167h"}}}};
    platform_ = new Platform();
    ASSERT_TRUE(platform_->Start("journey", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop()) << "clean shutdown on SIGTERM";
    delete platform_;
    delete report_;
  }

  static client::Targets Targets() {
    auto at = [](::helpline::testing::ServiceProcess& service) {
      return absl::StrCat("127.0.0.1:", service.port());
    };
    return {at(platform_->identity()), at(platform_->catalog()), at(platform_->matching()),
            at(platform_->sessions()), at(platform_->payments())};
  }

  static constexpr double kClockRate = 60;
  static Platform* platform_;
  // What the journey (the first test) did, for the tests reading its events.
  static demo::JourneyReport* report_;
};

Platform* JourneyE2eTest::platform_ = nullptr;
demo::JourneyReport* JourneyE2eTest::report_ = nullptr;

TEST_F(JourneyE2eTest, PaidSponsoredRefundedAndPaidOut) {
  client::Client client(Targets());
  demo::JourneyOptions options;
  options.admin_email = ::helpline::testing::kPlatformAdminEmail;
  options.admin_password = ::helpline::testing::kPlatformAdminPassword;
  options.clock_rate = kClockRate;
  options.refund_window = absl::Minutes(10);
  options.run_tag = "e2e";
  std::vector<std::string> narration;
  demo::Journey journey(client, options, [&](const std::string& line) { narration.push_back(line); });
  ASSERT_TRUE(journey.Seed().ok());
  absl::StatusOr<demo::JourneyReport> report = journey.Run();
  ASSERT_TRUE(report.ok()) << report.status() << "\n" << absl::StrJoin(narration, "\n");
  report_ = new demo::JourneyReport(*report);

  // Anna: about 12 minutes at 150 a minute, the split exact.
  EXPECT_EQ(report->first_position, 1);
  EXPECT_EQ(report->billed_minutes, 12);
  EXPECT_EQ(report->billed_minor, 1800);
  EXPECT_EQ(report->person_spent_minor, 1800);
  EXPECT_EQ(report->fee_minor, 360);
  EXPECT_EQ(report->expert_share_minor, 1440);
  // Her review is in Ben's rating in search.
  EXPECT_EQ(report->reviews_before, 0);
  EXPECT_EQ(report->reviews_after, 1);
  EXPECT_DOUBLE_EQ(report->stars_after, 5);
  // Cleo's session: the minimum 5 minutes from the sponsor's budget, free for her.
  EXPECT_EQ(report->sponsored_billed_minor, 750);
  EXPECT_EQ(report->sponsor_spent_after_minor - report->sponsor_spent_before_minor, 750);
  EXPECT_EQ(report->sponsored_person_spent_minor, 0);
  // Dan's refund reverses both postings: Ben's share and Helpline's fee.
  EXPECT_EQ(report->refunded_minor, 750);
  EXPECT_EQ(report->refunded_share_minor, 600);
  int64_t reversed_fee = 0;
  for (const kafka::Record& record : ::helpline::testing::ReadToEnd(
           es::ServiceTopics::For("payments", platform_->prefix()).events, platform_->partitions())) {
    payments::v1::PaymentsEvent event;
    ASSERT_TRUE(event.ParseFromString(record.value));
    if (event.session_refunded().session_id() != report->refunded_session_id) continue;
    for (const payments::v1::Transfer& transfer : event.session_refunded().transfers()) {
      if (transfer.debit_account_id() == "platform:commission") reversed_fee += transfer.amount();
    }
  }
  EXPECT_EQ(reversed_fee, 150);
  // Ben's payout takes everything available: 1440 + 600.
  EXPECT_EQ(report->payout_minor, 2040);
  EXPECT_EQ(report->expert_balance.expert().available().amount_minor(), 0);
  EXPECT_EQ(report->expert_balance.expert().pending().amount_minor(), 0);
  EXPECT_EQ(report->expert_balance.expert().paid_out().amount_minor(), 2040);
  // The ledger sums to zero and agrees with the processor.
  EXPECT_TRUE(report->reconcile.accounts_sum_to_zero());
  EXPECT_TRUE(report->reconcile.balances_match_replay());
  EXPECT_TRUE(report->reconcile.processor_matches_ledger());
  EXPECT_TRUE(report->reconcile.flags_hold());
  for (const std::string& problem : report->reconcile.problems()) ADD_FAILURE() << problem;
}

// Runs after the journey: what the five services wrote is what analysts read.
TEST_F(JourneyE2eTest, EveryEventTheServicesWroteDecodesAndRoundTripsThroughJson) {
  int64_t records = 0;
  std::set<std::string> types;
  for (const events::EventStream& stream : events::CompiledEventStreams()) {
    const std::string topic = stream.Topic(platform_->prefix());
    for (const kafka::Record& record :
         ::helpline::testing::ReadToEnd(topic, platform_->partitions())) {
      ++records;
      absl::StatusOr<events::DecodedEvent> event = events::DecodeEvent(record, stream);
      ASSERT_TRUE(event.ok()) << topic << "@" << record.offset << ": " << event.status();
      types.insert(event->Type());
      EXPECT_EQ(record.HeaderValue("ce_type"), event->Type());
      nlohmann::json line = nlohmann::json::parse(
          events::CloudEventJson(record, *event, events::JsonStyle{}));
      EXPECT_EQ(line["id"], event->meta.event_id());
      EXPECT_EQ(line["subject"], record.key);
      EXPECT_EQ(event->meta.aggregate_id(), record.key);
      std::unique_ptr<google::protobuf::Message> back(event->envelope->New());
      ASSERT_TRUE(
          google::protobuf::util::JsonStringToMessage(line["data"].dump(), back.get()).ok());
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*back, *event->envelope))
          << line.dump();
    }
  }
  for (const char* type :
       {"helpline.identity.v1.UserRegistered", "helpline.catalog.v1.ExpertApproved",
        "helpline.matching.v1.ExpertWentOnline", "helpline.matching.v1.MatchMade",
        "helpline.sessions.v1.SessionEnded", "helpline.sessions.v1.ReviewSubmitted",
        "helpline.payments.v1.SessionCaptured", "helpline.payments.v1.SessionRefunded",
        "helpline.payments.v1.PayoutSettled"}) {
    EXPECT_EQ(types.count(type), 1u) << type << " was not written by the journey";
  }

  // The tool exports the same records, none skipped, as the analysts' principal.
  std::vector<std::string> arguments{"export", "all", "--topic-prefix", platform_->prefix()};
  for (std::string& flag : ::helpline::testing::KafkaFlags(AnalystKafka())) {
    arguments.push_back(std::move(flag));
  }
  absl::StatusOr<events::ToolOptions> options = events::ParseToolArgs(arguments);
  ASSERT_TRUE(options.ok()) << options.status();
  std::ostringstream out, err;
  std::atomic<bool> stop{false};
  absl::StatusOr<events::ToolSummary> summary = events::RunTool(*options, out, err, stop);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_GE(summary->written, records) << "events written after the read above come too";
  EXPECT_EQ(summary->undecodable, 0) << err.str();
}

// On demo time (the services' clock 60 times faster) the tokens still carry
// the wall clock: LiveKit's own SDK accepts the room token, and a standard
// JWT library finds an access token valid now.
TEST_F(JourneyE2eTest, LiveKitsSdkAndAStandardJwtLibraryAcceptTheTokensOnDemoTime) {
  ASSERT_NE(report_, nullptr) << "needs the journey";
  ASSERT_FALSE(report_->anna_join.room_token().empty());
  ::helpline::testing::Account anna = platform_->Login("anna.e2e@demo.helpline.local",
                                                      "demo-password-1");
  ASSERT_FALSE(anna.access_token.empty());
  const std::string script = absl::StrCat(
      "import sys, jwt\n"
      "from livekit import api\n"
      "claims = api.TokenVerifier('test-key', sys.argv[3]).verify(sys.argv[1])\n"
      "assert claims.video.room == sys.argv[4] and claims.video.room_join, claims\n"
      "jwt.decode(sys.argv[2], options={'verify_signature': False, 'verify_exp': True,\n"
      "           'verify_nbf': True, 'verify_iat': True, 'require': ['exp', 'iat']})\n"
      "print('accepted')\n");
  std::string command = absl::StrCat(
      ::helpline::testing::LiveKitPython(), " -c \"", script, "\" ",
      report_->anna_join.room_token(), " ", anna.access_token, " ",
      ::helpline::testing::kPlatformLivekitSecret, " ", report_->paid_session_id, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_NE(output.find("accepted"), std::string::npos) << output;
}

// The analysts' worked example (tools/analysis/metrics.py, Python with
// confluent-kafka) on the journey's streams adds up to what the journey did.
TEST_F(JourneyE2eTest, TheWorkedAnalysisAddsUpToTheJourney) {
  ASSERT_NE(report_, nullptr) << "needs the journey";
  std::string command = absl::StrCat(
      "PYTHONPATH=", HELPLINE_PYTHON_PROTOS, " ", HELPLINE_ANALYSIS_PYTHON, " ",
      ::helpline::testing::SourcePath("tools/analysis/metrics.py"), " --json --topic-prefix ",
      platform_->prefix());
  for (const std::string& flag : ::helpline::testing::KafkaFlags(AnalystKafka())) {
    absl::StrAppend(&command, " '", flag, "'");
  }
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << command << "\n" << output;
  nlohmann::json figures = nlohmann::json::parse(output);

  // Anna's, Cleo's and Dan's requests were matched; each waited some time.
  const nlohmann::json& waits = figures["time_to_match"][report_->category_id];
  EXPECT_EQ(waits["matched"], 3) << waits.dump();
  EXPECT_EQ(waits["requests"], 3);
  EXPECT_GE(waits["median_seconds"].get<double>(), 0);
  // Three sessions ended: Anna's billed minutes, then the 5-minute minimum twice.
  const nlohmann::json& minutes = figures["minutes_delivered"][report_->category_id];
  EXPECT_EQ(minutes["ended"], 3) << minutes.dump();
  EXPECT_EQ(minutes["sponsored"], 1);
  EXPECT_EQ(minutes["billed_minutes"], report_->billed_minutes + 5 + 5);
  // Money: 18.00 + 7.50 + 7.50 captured, Dan's 7.50 refunded; the commission
  // 3.60 + 1.50 + 1.50 - 1.50.
  const nlohmann::json& money = figures["revenue"][report_->category_id]["EUR"];
  EXPECT_EQ(money["captured_minor"],
            report_->billed_minor + report_->sponsored_billed_minor + report_->refunded_minor)
      << money.dump();
  EXPECT_EQ(money["refunded_minor"], report_->refunded_minor);
  EXPECT_EQ(money["commission_minor"], report_->fee_minor + 150);
  EXPECT_EQ(money["experts_minor"].get<int64_t>() + money["commission_minor"].get<int64_t>(),
            money["net_minor"].get<int64_t>());
}

}  // namespace
}  // namespace helpline
