#include "services/runtime/core/ids.h"

#include <set>

#include "gtest/gtest.h"

namespace helpline::ids {
namespace {

TEST(IdsTest, UuidV5MatchesTheRfcExample) {
  // RFC 9562's name-based example as Python's uuid.uuid5(NAMESPACE_DNS, "python.org") prints it.
  EXPECT_EQ(UuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

TEST(IdsTest, CommandIdIsStablePerCallerAndRequest) {
  EXPECT_EQ(CommandId("user-1", "req-1"), CommandId("user-1", "req-1"));
  EXPECT_NE(CommandId("user-1", "req-1"), CommandId("user-2", "req-1"));
  EXPECT_NE(CommandId("user-1", "req-1"), CommandId("user-1", "req-2"));
  // The separator keeps ("a", "b\nc") and ("a\nb", "c") apart only if callers
  // cannot contain it; user ids are UUIDs, so they cannot.
  EXPECT_TRUE(IsUuid(CommandId("user-1", "req-1")));
  EXPECT_EQ(CommandId("user-1", "req-1")[14], '5');
}

TEST(IdsTest, UuidV7IsUniqueTimeOrderedAndVersioned) {
  std::set<std::string> seen;
  std::string previous;
  for (int i = 0; i < 2000; ++i) {
    std::string id = NewUuidV7();
    ASSERT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '7');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
    EXPECT_TRUE(seen.insert(id).second);
    // The first 48 bits are milliseconds: never earlier than the previous id's.
    EXPECT_GE(id.substr(0, 13), previous.substr(0, std::min<size_t>(13, previous.size())));
    previous = id;
  }
}

TEST(IdsTest, EventIdsComeOutTheSameForTheSameEventAndDifferForOthers) {
  const int64_t millis = 1'780'000'000'123;  // 2026-05-28T20:26:40.123Z
  const std::string id = EventUuidV7(millis, "sessions", "session-1", 3);
  EXPECT_EQ(id, EventUuidV7(millis, "sessions", "session-1", 3));
  EXPECT_NE(id, EventUuidV7(millis, "sessions", "session-1", 4));
  EXPECT_NE(id, EventUuidV7(millis, "sessions", "session-2", 3));
  EXPECT_NE(id, EventUuidV7(millis, "payments", "session-1", 3)) << "another service's aggregate";
  ASSERT_TRUE(IsUuid(id)) << id;
  EXPECT_EQ(id[14], '7');
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
  // 1780000000123 = 0x019e7044887b: the time leads, so ids sort by time.
  EXPECT_EQ(id.substr(0, 13), "019e7044-887b");
  EXPECT_LT(id, EventUuidV7(millis + 1, "sessions", "session-1", 3));
  std::set<std::string> seen;
  for (int version = 1; version <= 1000; ++version) {
    EXPECT_TRUE(seen.insert(EventUuidV7(millis, "sessions", "session-1", version)).second);
  }
}

TEST(IdsTest, IsUuid) {
  EXPECT_TRUE(IsUuid("886313e1-3b8a-5372-9b90-0c9aee199e5d"));
  EXPECT_TRUE(IsUuid("886313E1-3B8A-5372-9B90-0C9AEE199E5D"));
  EXPECT_FALSE(IsUuid("886313e1-3b8a-5372-9b90-0c9aee199e5"));
  EXPECT_FALSE(IsUuid("886313e1+3b8a-5372-9b90-0c9aee199e5d"));
  EXPECT_FALSE(IsUuid("g86313e1-3b8a-5372-9b90-0c9aee199e5d"));
}

}  // namespace
}  // namespace helpline::ids
