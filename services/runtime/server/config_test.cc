#include "services/runtime/server/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace helpline::server {
namespace {

using ::testing::HasSubstr;

ConfigSchema SampleSchema() {
  ConfigSchema schema;
  schema.String("kafka.bootstrap_servers", std::nullopt, "brokers")
      .Int("grpc.max_message_bytes", 4096, 1024, 1 << 20, "largest message")
      .Double("clock.rate", 1, 0.001, 3600, "speed of the service clock")
      .Bool("metrics.enabled", true, "serve metrics")
      .Duration("offer.window", absl::Seconds(30), absl::Seconds(1), absl::Minutes(10), "offer")
      .OneOf("log.level", "info", {"debug", "info"}, "level")
      .Secret("kafka.sasl_password", "password");
  return schema;
}

TEST(ConfigTest, DefaultsThenFileThenEnvironment) {
  absl::StatusOr<Config> config = LoadConfig(
      SampleSchema(),
      R"({"kafka": {"bootstrap_servers": "file:9092"}, "clock.rate": 60, "offer": {"window": "45s"}})",
      {{"HELPLINE_KAFKA_BOOTSTRAP_SERVERS", "env:9092"}, {"HELPLINE_METRICS_ENABLED", "false"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("kafka.bootstrap_servers"), "env:9092");
  EXPECT_EQ(config->GetInt("grpc.max_message_bytes"), 4096);
  EXPECT_DOUBLE_EQ(config->GetDouble("clock.rate"), 60);
  EXPECT_FALSE(config->GetBool("metrics.enabled"));
  EXPECT_EQ(config->GetDuration("offer.window"), absl::Seconds(45));
  EXPECT_EQ(config->GetString("log.level"), "info");
}

TEST(ConfigTest, UnknownFileKeyIsNamed) {
  absl::StatusOr<Config> config = LoadConfig(
      SampleSchema(), R"({"kafka": {"bootstrap_servers": "k:9092", "bootstrap_server": "x"}})", {});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("unknown key 'kafka.bootstrap_server'"));
}

TEST(ConfigTest, UnknownEnvironmentOverrideIsNamed) {
  absl::StatusOr<Config> config =
      LoadConfig(SampleSchema(), std::nullopt,
                 {{"HELPLINE_KAFKA_BOOTSTRAP_SERVERS", "k:9092"}, {"HELPLINE_CLOCK_RATIO", "2"},
                  {"PATH", "/usr/bin"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("HELPLINE_CLOCK_RATIO"));
}

TEST(ConfigTest, ConfigFileVariableIsNotAnOverride) {
  absl::StatusOr<Config> config = LoadConfig(
      SampleSchema(), std::nullopt,
      {{"HELPLINE_KAFKA_BOOTSTRAP_SERVERS", "k:9092"}, {"HELPLINE_CONFIG", "/etc/x.json"}});
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST(ConfigTest, MissingRequiredKeyNamesKeyAndVariable) {
  absl::StatusOr<Config> config = LoadConfig(SampleSchema(), "{}", {});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("'kafka.bootstrap_servers' is required"));
  EXPECT_THAT(config.status().message(), HasSubstr("HELPLINE_KAFKA_BOOTSTRAP_SERVERS"));
}

struct BadValue {
  std::string name;
  std::string json;
  std::string expected;
};

void PrintTo(const BadValue& value, std::ostream* out) { *out << value.name; }

class BadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(BadValueTest, IsRejectedWithTheKeyNamed) {
  absl::StatusOr<Config> config = LoadConfig(SampleSchema(), GetParam().json, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Values, BadValueTest,
    ::testing::Values(
        BadValue{"StringGivenANumber", R"({"kafka.bootstrap_servers": 9092})", "'kafka.bootstrap_servers'"},
        BadValue{"IntBelowMinimum", R"({"kafka.bootstrap_servers": "k", "grpc.max_message_bytes": 10})",
                 "'grpc.max_message_bytes' (from config file): 10 is outside [1024, 1048576]"},
        BadValue{"IntNotANumber", R"({"kafka.bootstrap_servers": "k", "grpc.max_message_bytes": "lots"})",
                 "'grpc.max_message_bytes'"},
        BadValue{"DoubleOutOfRange", R"({"kafka.bootstrap_servers": "k", "clock.rate": 0})", "'clock.rate'"},
        BadValue{"BoolNotABool", R"({"kafka.bootstrap_servers": "k", "metrics.enabled": "maybe"})",
                 "'metrics.enabled'"},
        BadValue{"DurationGivenANumber", R"({"kafka.bootstrap_servers": "k", "offer.window": 30})",
                 "'offer.window' (from config file): must be a duration"},
        BadValue{"DurationOutOfRange", R"({"kafka.bootstrap_servers": "k", "offer.window": "2h"})",
                 "'offer.window' (from config file): 2h is outside [1s, 10m]"},
        BadValue{"NotOneOfTheAllowed", R"({"kafka.bootstrap_servers": "k", "log.level": "loud"})",
                 "'loud' is not one of: debug, info"},
        BadValue{"NotAnObject", R"([1, 2])", "not a JSON object"},
        BadValue{"NotJson", R"({"kafka.bootstrap_servers": )", "not a JSON object"}),
    [](const ::testing::TestParamInfo<BadValue>& info) { return info.param.name; });

TEST(ConfigTest, EnvironmentValuesAreCheckedToo) {
  absl::StatusOr<Config> config = LoadConfig(
      SampleSchema(), std::nullopt,
      {{"HELPLINE_KAFKA_BOOTSTRAP_SERVERS", "k"}, {"HELPLINE_OFFER_WINDOW", "soon"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("HELPLINE_OFFER_WINDOW"));
}

TEST(ConfigTest, DescribeHidesSecrets) {
  absl::StatusOr<Config> config =
      LoadConfig(SampleSchema(), std::nullopt,
                 {{"HELPLINE_KAFKA_BOOTSTRAP_SERVERS", "k"},
                  {"HELPLINE_KAFKA_SASL_PASSWORD", "hunter2"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->GetString("kafka.sasl_password"), "hunter2");
  std::string described = config->Describe().dump();
  EXPECT_THAT(described, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_EQ(config->Describe()["kafka.sasl_password"], "<set>");
}

TEST(ConfigDeathTest, LoadConfigOrExitStopsTheStartNamingTheKey) {
  std::string path = ::testing::TempDir() + "/bad-config.json";
  FILE* file = fopen(path.c_str(), "w");
  fputs(R"({"kafka": {"bootstrap_servers": "k"}, "grpc.listen": "x"})", file);
  fclose(file);
  std::string flag = "--config=" + path;
  char* argv[] = {const_cast<char*>("identity"), flag.data(), nullptr};
  EXPECT_EXIT(LoadConfigOrExit(SampleSchema(), 2, argv), ::testing::ExitedWithCode(2),
              "unknown key 'grpc.listen'");
}

}  // namespace
}  // namespace helpline::server
