#include "services/runtime/server/log.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace helpline::log {
namespace {

TEST(LogTest, LineIsOneJsonObjectWithFields) {
  std::string line = FormatLine(Level::kWarn, "offer \"expired\"\nagain", {{"request_id", "r1"}, {"n", 3}},
                                "matching", "4bf92f3577b34da6a3ce929d0e0e4736",
                                "2026-11-27T10:00:00.000000Z");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["level"], "warn");
  EXPECT_EQ(parsed["service"], "matching");
  EXPECT_EQ(parsed["msg"], "offer \"expired\"\nagain");
  EXPECT_EQ(parsed["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed["time"], "2026-11-27T10:00:00.000000Z");
  EXPECT_EQ(parsed["request_id"], "r1");
  EXPECT_EQ(parsed["n"], 3);
}

TEST(LogTest, FieldsCannotOverwriteTheStandardOnes) {
  nlohmann::json parsed = nlohmann::json::parse(
      FormatLine(Level::kInfo, "real", {{"msg", "fake"}, {"level", "error"}}, "", "", "t"));
  EXPECT_EQ(parsed["msg"], "real");
  EXPECT_EQ(parsed["level"], "info");
  EXPECT_FALSE(parsed.contains("trace_id"));
}

TEST(LogTest, InvalidUtf8IsReplacedNotDropped) {
  std::string line = FormatLine(Level::kInfo, std::string("bad \xff byte"), nullptr, "", "", "t");
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_NE(parsed["msg"].get<std::string>().find("byte"), std::string::npos);
}

TEST(LogTest, ParseLevel) {
  Level level = Level::kInfo;
  EXPECT_TRUE(ParseLevel("error", &level));
  EXPECT_EQ(level, Level::kError);
  EXPECT_FALSE(ParseLevel("loud", &level));
}

}  // namespace
}  // namespace helpline::log
