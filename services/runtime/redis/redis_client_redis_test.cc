#include "services/runtime/redis/redis_client.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_stack.h"

namespace helpline::redis {
namespace {

using ::helpline::testing::TestRedis;
using ::helpline::testing::UniqueName;

TEST(RedisClientTest, Ping) {
  Client client(TestRedis());
  EXPECT_TRUE(client.Ping().ok());
}

TEST(RedisClientTest, SetWithTtlExpires) {
  Client client(TestRedis());
  std::string key = UniqueName("presence");
  auto set = client.Command({"SET", key, "available", "PX", "300", "NX"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->text, "OK");
  auto second = client.Command({"SET", key, "busy", "PX", "300", "NX"});
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->is_nil()) << "NX: the first holder keeps it";
  auto ttl = client.Command({"PTTL", key});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 300);

  absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool gone = false;
  while (!gone && absl::Now() < deadline) {
    auto value = client.Command({"GET", key});
    ASSERT_TRUE(value.ok());
    gone = value->is_nil();
    if (!gone) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(gone) << "the key expired";
}

TEST(RedisClientTest, PipelineAnswersInOrderAndKeepsErrorReplies) {
  Client client(TestRedis());
  std::string online = UniqueName("online");
  auto replies = client.Pipeline({{"ZADD", online, "10", "expert-a"},
                                  {"ZADD", online, "20", "expert-b"},
                                  {"INCR", online},  // wrong type: an error reply, not a failure
                                  {"ZRANGEBYSCORE", online, "15", "+inf"},
                                  {"ZCARD", online}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ((*replies)[0].integer, 1);
  EXPECT_TRUE((*replies)[2].is_error());
  EXPECT_NE((*replies)[2].text.find("WRONGTYPE"), std::string::npos);
  ASSERT_EQ((*replies)[3].elements.size(), 1u);
  EXPECT_EQ((*replies)[3].elements[0].text, "expert-b");
  EXPECT_EQ((*replies)[4].integer, 2);
  EXPECT_TRUE(client.Ping().ok()) << "the connection is still usable";
}

TEST(RedisClientTest, BinaryValuesRoundTrip) {
  Client client(TestRedis());
  std::string key = UniqueName("binary");
  std::string value("a\0b\r\nc", 6);
  ASSERT_TRUE(client.Command({"SET", key, value}).ok());
  auto read = client.Command({"GET", key});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->text, value);
}

TEST(RedisClientTest, ReconnectsAfterTheServerRestarts) {
  int port = ::helpline::testing::PickFreePort();
  ::helpline::testing::RedisServerProcess server(port);
  ASSERT_TRUE(server.Start());
  ClientOptions options;
  options.port = port;
  options.command_timeout = absl::Milliseconds(500);
  Client client(options);
  ASSERT_TRUE(client.Command({"SET", "k", "before"}).ok());

  server.Kill();
  absl::Status while_down = client.Ping();
  EXPECT_EQ(while_down.code(), absl::StatusCode::kUnavailable) << while_down;

  ASSERT_TRUE(server.Start());
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::Status status = client.Ping();
  while (!status.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    status = client.Ping();
  }
  EXPECT_TRUE(status.ok()) << status;
  auto value = client.Command({"GET", "k"});
  ASSERT_TRUE(value.ok());
  EXPECT_TRUE(value->is_nil()) << "a restarted server without persistence starts empty";
}

TEST(RedisClientTest, UnreachableServerIsUnavailableNotAHang) {
  ClientOptions options;
  options.port = ::helpline::testing::PickFreePort();
  options.connect_timeout = absl::Milliseconds(200);
  Client client(options);
  absl::Status status = client.Ping();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(std::to_string(options.port)), std::string::npos);
}

}  // namespace
}  // namespace helpline::redis
