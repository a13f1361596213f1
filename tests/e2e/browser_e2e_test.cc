// Browsers and scripts through the gateway: the five services as processes,
// helpline-gateway in front of them serving the reference web page on an
// origin of its own, REST read with curl, and the journey driven in
// headless Chromium (tests/e2e/browser/journey.mjs) over Connect and over
// gRPC-Web: a person asks and sees their place in line, an expert in another
// browser context goes online and accepts, the person's page shows the match.
#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/catalog/domain/catalog_test_log.h"
#include "tests/support/child_process.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"

namespace helpline {
namespace {

using ::helpline::testing::Account;
using ::helpline::testing::ChildProcess;
using ::helpline::testing::Platform;
using ::helpline::testing::ReadText;

struct Http {
  int status = 0;
  std::string body;
};

// Runs a shell command, its output in a file; returns the exit status.
int RunShell(const std::string& command, const std::string& output_file) {
  int status = std::system((command + " > '" + output_file + "' 2>&1 < /dev/null").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class BrowserE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Platform::Options options;
    options.sessions = true;
    options.payments = true;
    platform_ = new Platform();
    ASSERT_TRUE(platform_->Start("browser", options));
    dir_ = new std::string(::testing::TempDir() + ::helpline::testing::UniqueName("browser"));
    std::filesystem::create_directories(*dir_);

    nlohmann::json config = {
        {"gateway",
         {{"listen", "127.0.0.1:0"},
          {"web_listen", "127.0.0.1:0"},
          {"web_root", HELPLINE_WEB_PAGE_DIR},
          {"descriptor_set", HELPLINE_GATEWAY_DIR "/helpline.binpb"},
          {"openapi_file", HELPLINE_GATEWAY_DIR "/openapi.yaml"}}},
        {"metrics", {{"listen", "127.0.0.1:0"}}},
        {"log", {{"file", *dir_ + "/gateway.log"}, {"level", "debug"}}},
        {"ports_file", *dir_ + "/gateway.ports.json"}};
    for (const char* service : {"identity", "catalog", "matching", "sessions", "payments"}) {
      config["gateway"][absl::StrCat(service, "_target")] = platform_->Target(service);
    }
    std::ofstream(*dir_ + "/gateway.json") << config.dump(2);
    gateway_ = new ChildProcess(HELPLINE_GATEWAY_DIR "/helpline-gateway",
                                {"--config", *dir_ + "/gateway.json"}, *dir_ + "/gateway.out");
    ASSERT_TRUE(gateway_->Start());
    nlohmann::json ports;
    for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
      ports = nlohmann::json::parse(ReadText(*dir_ + "/gateway.ports.json"), nullptr, false);
      if (ports.is_object()) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(ports.is_object()) << gateway_->Output();
    const std::string local = "http://127.0.0.1:";
    gateway_url_ = new std::string(absl::StrCat(local, ports["grpc_port"].get<int>()));
    page_url_ = new std::string(absl::StrCat(local, ports["web_port"].get<int>(), "/"));
    metrics_url_ = new std::string(
        absl::StrCat("http://127.0.0.1:", ports["metrics_port"].get<int>(), "/metrics"));
    Http ready;
    nlohmann::json health;
    for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
      ready = Curl({*gateway_url_ + "/readyz"});
      health = nlohmann::json::parse(ready.body, nullptr, false);
      if (ready.status == 200 && health.is_object() && health["services_checked"] == true &&
          health["not_serving"].empty()) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    ASSERT_EQ(ready.status, 200) << ready.body;
    ASSERT_TRUE(health.is_object() && health["not_serving"].empty())
        << "every service serving, as the gateway sees it: " << ready.body;
  }

  static void TearDownTestSuite() {
    if (gateway_ != nullptr) {
      int status = gateway_->Signal(SIGTERM);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the gateway stops cleanly";
    }
    platform_->Stop();
    delete gateway_;
    delete platform_;
  }

  // curl with `args` (each quoted); the HTTP status and the body.
  static Http Curl(const std::vector<std::string>& args) {
    std::string command = "curl -sS -o '" + *dir_ + "/curl.body' -w '%{http_code}'";
    for (const std::string& arg : args) absl::StrAppend(&command, " '", arg, "'");
    RunShell(command, *dir_ + "/curl.status");
    Http http;
    http.status = std::atoi(ReadText(*dir_ + "/curl.status").c_str());
    http.body = ReadText(*dir_ + "/curl.body");
    return http;
  }

  // A published expert in a category of its own that matching knows, offline.
  static std::pair<Account, std::string> OfflineExpert(const std::string& name) {
    std::string category = platform_->NewCategory();
    catalog::v1::ProfileContent content = catalog::testing::ValidContent("Bikes", category, 150);
    content.set_public_name(name);
    Account expert = platform_->PublishedExpert(content);
    // Matching knows the category once a request for it is accepted.
    Account someone = platform_->NewAccount();
    matching::v1::HelpRequest asked =
        platform_->AskForHelp(someone, Platform::HelpRequestFor(category));
    auto stub = matching::v1::MatchingService::NewStub(
        grpc::CreateChannel(platform_->Target("matching"), grpc::InsecureChannelCredentials()));
    matching::v1::CancelRequestRequest cancel;
    cancel.set_help_request_id(asked.help_request_id());
    matching::v1::CancelRequestResponse cancelled;
    EXPECT_TRUE(Platform::Call(*stub, &matching::v1::MatchingService::Stub::CancelRequest, someone,
                               cancel, &cancelled).ok());
    return {expert, category};
  }

  // The browser journey over `protocol`; its last line, parsed.
  static nlohmann::json DriveJourney(const std::string& protocol) {
    auto [expert, category] = OfflineExpert("Browser " + protocol);
    Account person = platform_->NewAccount();
    const std::string artifacts = std::string(HELPLINE_TEST_ARTIFACTS) + "/" + protocol;
    std::filesystem::create_directories(artifacts);
    const std::string output = *dir_ + "/journey-" + protocol + ".out";
    const std::string command = absl::StrCat(
        "HL_DEPS_DIR='", HELPLINE_DEPS_DIR, "' node '",
        ::helpline::testing::SourcePath("tests/e2e/browser/journey.mjs"),
        "' --page-url '", *page_url_, "' --protocol ", protocol,
        " --person-email '", person.email, "' --expert-email '", expert.email, "' --password '",
        ::helpline::testing::kPlatformPassword, "' --category-id '", category,
        "' --expert-name 'Browser ", protocol, "' --artifacts '", artifacts, "'");
    int exit_code = RunShell(command, output);
    std::string printed = ReadText(output);
    EXPECT_EQ(exit_code, 0) << printed << "\n--- gateway log tail:\n"
                            << ReadText(*dir_ + "/gateway.log").substr(0, 4000);
    std::vector<std::string> lines = absl::StrSplit(printed, '\n', absl::SkipWhitespace());
    return lines.empty() ? nlohmann::json() : nlohmann::json::parse(lines.back(), nullptr, false);
  }

  // helpline_gateway_requests_total summed over the lines that contain every one of `labels`.
  static double GatewayCalls(const std::vector<std::string>& labels) {
    double total = 0;
    for (absl::string_view line : absl::StrSplit(Curl({*metrics_url_}).body, '\n')) {
      if (!absl::StartsWith(line, "helpline_gateway_requests_total{")) continue;
      bool all = true;
      for (const std::string& label : labels) all = all && absl::StrContains(line, label);
      if (all) total += std::atof(std::string(line.substr(line.rfind(' ') + 1)).c_str());
    }
    return total;
  }

  static Platform* platform_;
  static ChildProcess* gateway_;
  static std::string* dir_;
  static std::string* gateway_url_;
  static std::string* page_url_;
  static std::string* metrics_url_;
};

Platform* BrowserE2eTest::platform_ = nullptr;
ChildProcess* BrowserE2eTest::gateway_ = nullptr;
std::string* BrowserE2eTest::dir_ = nullptr;
std::string* BrowserE2eTest::gateway_url_ = nullptr;
std::string* BrowserE2eTest::page_url_ = nullptr;
std::string* BrowserE2eTest::metrics_url_ = nullptr;

TEST_F(BrowserE2eTest, RestSearchesAndAnswersErrorsAsJson) {
  auto [expert, category] = OfflineExpert("Rest Expert");
  Account person = platform_->NewAccount();
  const std::string bearer = "Authorization: Bearer " + person.access_token;

  Http found = Curl({"-H", bearer, *gateway_url_ + "/v1/experts?categoryId=" + category});
  ASSERT_EQ(found.status, 200) << found.body;
  nlohmann::json hits = nlohmann::json::parse(found.body, nullptr, false);
  ASSERT_TRUE(hits.is_object()) << found.body;
  ASSERT_EQ(hits["hits"].size(), 1u) << found.body;
  EXPECT_EQ(hits["hits"][0]["expertId"], expert.user_id) << found.body;

  Http bad = Curl({"-H", bearer, "-H", "Content-Type: application/json", "-d",
                   nlohmann::json{{"requestId", "rest-1"}, {"categoryId", category},
                                  {"language", "de"}, {"description", ""},
                                  {"budget", {{"maxPerMinute", {{"currencyCode", "EUR"},
                                                                {"amountMinor", "200"}}}}}}
                       .dump(),
                   *gateway_url_ + "/v1/help-requests"});
  EXPECT_EQ(bad.status, 400) << bad.body;
  nlohmann::json error = nlohmann::json::parse(bad.body, nullptr, false);
  ASSERT_TRUE(error.is_object()) << bad.body;
  EXPECT_EQ(error["code"], 3) << bad.body;  // INVALID_ARGUMENT, as a google.rpc.Status
  ASSERT_FALSE(error["details"].empty()) << bad.body;
  EXPECT_EQ(error["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest") << bad.body;
  EXPECT_EQ(error["details"][0]["fieldViolations"][0]["field"], "description") << bad.body;

  Http anonymous = Curl({*gateway_url_ + "/v1/balance"});
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;

  Http openapi = Curl({*gateway_url_ + "/openapi.yaml"});
  EXPECT_EQ(openapi.status, 200);
  EXPECT_TRUE(absl::StrContains(openapi.body, "/v1/experts/{expertId}:"))
      << openapi.body.substr(0, 400);
}

TEST_F(BrowserE2eTest, APersonSeesTheirPlaceInLineAndTheMatchLiveOverConnect) {
  nlohmann::json result = DriveJourney("connect");
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["ok"], true) << result.dump();
  EXPECT_LT(result["match_seen_ms"].get<double>(), 1000) << result.dump();
  EXPECT_GT(GatewayCalls({"method=\"WatchRequest\"", "protocol=\"connect\""}), 0);
}

TEST_F(BrowserE2eTest, TheSameJourneyWorksOverGrpcWeb) {
  nlohmann::json result = DriveJourney("grpc-web");
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["ok"], true) << result.dump();
  EXPECT_LT(result["match_seen_ms"].get<double>(), 1000) << result.dump();
  EXPECT_GT(GatewayCalls({"method=\"AcceptOffer\"", "protocol=\"grpc_web\"", "code=\"OK\""}), 0);
}

}  // namespace
}  // namespace helpline
