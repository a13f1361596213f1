// The `helpline` command against identity and catalog as processes (on a
// 60x clock, so an access token expires in 15 s): every service's methods
// are listed, signing in keeps the tokens in a private file and refreshes
// them, calls print what the server said, bad input names the field and
// sets the exit status.
#include <sys/stat.h>


#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"
#include "tools/cli/cli.h"

namespace helpline {
namespace {

using ::helpline::testing::Platform;
using ::helpline::testing::ReadText;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Platform::Options options;
    options.matching = false;
    options.clock_rate = 60;
    // Access tokens that expire within the test (no leeway at identity).
    options.identity_config = {{"identity", {{"access_token_ttl", "10s"}}},
                               {"auth", {{"leeway", "0s"}}}};
    platform_ = new Platform();
    ASSERT_TRUE(platform_->Start("cli", options));
    platform_->Admin();  // waits until identity has made the admin's account
    config_dir_ = new std::string(::testing::TempDir() + ::helpline::testing::UniqueName("cli"));
  }

  static void TearDownTestSuite() {
    platform_->Stop();
    delete platform_;
    delete config_dir_;
  }

  // Runs `helpline` with `args` (each quoted) against the platform.
  static Outcome Helpline(const std::vector<std::string>& args) {
    const std::string out = *config_dir_ + ".out";
    const std::string err = *config_dir_ + ".err";
    std::vector<std::string> quoted;
    for (const std::string& arg : args) quoted.push_back("'" + arg + "'");
    const std::string command = absl::StrCat(
        "HL_TARGET_IDENTITY=127.0.0.1:", platform_->identity().port(),
        " HL_TARGET_CATALOG=127.0.0.1:", platform_->catalog().port(),
        " HL_CLI_CONFIG_DIR='", *config_dir_, "' ", HELPLINE_CLI_PATH, " ",
        absl::StrJoin(quoted, " "), " > '", out, "' 2> '", err, "' < /dev/null");
    int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadText(out), ReadText(err)};
  }

  static std::string Credentials() { return ReadText(*config_dir_ + "/credentials.json"); }

  static Platform* platform_;
  static std::string* config_dir_;
};

Platform* CliE2eTest::platform_ = nullptr;
std::string* CliE2eTest::config_dir_ = nullptr;

TEST_F(CliE2eTest, EveryServiceListsEveryMethod) {
  Outcome top = Helpline({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("helpline login EMAIL"), std::string::npos) << top.out;
  for (const std::string& name : cli::ServiceNames()) {
    Outcome listed = Helpline({name, "--help"});
    EXPECT_EQ(listed.exit_code, 0) << name;
    const google::protobuf::ServiceDescriptor* service = cli::FindService(name);
    for (int i = 0; i < service->method_count(); ++i) {
      EXPECT_NE(listed.out.find(cli::CommandName(service->method(i)->name())), std::string::npos)
          << name << " does not list " << service->method(i)->name();
    }
  }
  Outcome fields = Helpline({"matching", "request-help", "--help"});
  EXPECT_NE(fields.out.find("--budget.max-per-minute <money, e.g. 12.50EUR>"), std::string::npos)
      << fields.out;
}

TEST_F(CliE2eTest, SignedInCallsRefreshTheTokenAndBadInputNamesTheField) {
  Outcome anonymous = Helpline({"catalog", "create-category", "--category-id", "cli-made", "--name", "X"});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_NE(anonymous.err.find("UNAUTHENTICATED"), std::string::npos) << anonymous.err;

  Outcome login = Helpline({"login", ::helpline::testing::kPlatformAdminEmail, "--password",
                            ::helpline::testing::kPlatformAdminPassword});
  ASSERT_EQ(login.exit_code, 0) << login.err;
  EXPECT_NE(login.out.find("signed in as"), std::string::npos);
  struct stat file;
  ASSERT_EQ(stat((*config_dir_ + "/credentials.json").c_str(), &file), 0);
  EXPECT_EQ(file.st_mode & 0777, 0600) << "only the user reads the tokens";

  Outcome made = Helpline({"catalog", "create-category", "--category-id", "cli-made", "--name",
                           "Made by the CLI"});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("category_id: cli-made"), std::string::npos) << made.out;
  Outcome listed = Helpline({"catalog", "list-categories", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  nlohmann::json categories = nlohmann::json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(categories.is_object()) << listed.out;
  bool found = false;
  for (const auto& category : categories["categories"]) found = found || category["category_id"] == "cli-made";
  EXPECT_TRUE(found) << listed.out;

  Outcome server_says_no = Helpline({"catalog", "create-category", "--category-id", "Not An Id",
                                     "--name", "X"});
  EXPECT_EQ(server_says_no.exit_code, 1);
  EXPECT_NE(server_says_no.err.find("INVALID_ARGUMENT"), std::string::npos) << server_says_no.err;
  EXPECT_NE(server_says_no.err.find("category_id"), std::string::npos) << server_says_no.err;
  Outcome not_understood = Helpline({"catalog", "create-category", "--colour", "red"});
  EXPECT_EQ(not_understood.exit_code, 2);
  EXPECT_NE(not_understood.err.find("colour"), std::string::npos) << not_understood.err;

  // The access token (10 s here, on the wall clock) has expired; the next
  // call is refused, refreshes it and goes through.
  const std::string before = Credentials();
  absl::SleepFor(absl::Seconds(11));
  Outcome me = Helpline({"whoami", "--json"});
  EXPECT_EQ(me.exit_code, 0) << me.err;
  EXPECT_NE(me.out.find(::helpline::testing::kPlatformAdminEmail), std::string::npos) << me.out;
  EXPECT_NE(Credentials(), before) << "new tokens kept";

  Outcome out = Helpline({"logout"});
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_EQ(Helpline({"whoami"}).exit_code, 1) << "signed out";
  // The device token stays for the next sign-in on this machine; the tokens go.
  nlohmann::json kept = nlohmann::json::parse(Credentials(), nullptr, false);
  ASSERT_TRUE(kept.is_object()) << Credentials();
  EXPECT_FALSE(kept.contains("refresh_token")) << Credentials();
  EXPECT_FALSE(kept["device_tokens"].value(::helpline::testing::kPlatformAdminEmail, "").empty())
      << Credentials();
}

}  // namespace
}  // namespace helpline
