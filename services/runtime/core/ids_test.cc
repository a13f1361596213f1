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

TEST(IdsTest, IsUuid) {
  EXPECT_TRUE(IsUuid("886313e1-3b8a-5372-9b90-0c9aee199e5d"));
  EXPECT_TRUE(IsUuid("886313E1-3B8A-5372-9B90-0C9AEE199E5D"));
  EXPECT_FALSE(IsUuid("886313e1-3b8a-5372-9b90-0c9aee199e5"));
  EXPECT_FALSE(IsUuid("886313e1+3b8a-5372-9b90-0c9aee199e5d"));
  EXPECT_FALSE(IsUuid("g86313e1-3b8a-5372-9b90-0c9aee199e5d"));
}

}  // namespace
}  // namespace helpline::ids
