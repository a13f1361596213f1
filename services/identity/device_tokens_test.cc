#include "services/identity/device_tokens.h"

#include "gtest/gtest.h"

namespace helpline::identity {
namespace {

TEST(DeviceTokensTest, OnlyTheAccountsOwnUnexpiredUntamperedTokenNamesTheDevice) {
  FakeClock clock;
  DeviceTokens tokens("k3y-of-thirty-two-bytes-for-test", absl::Hours(24 * 90), clock);
  const std::string device = DeviceTokens::NewDeviceId();
  const std::string token = tokens.Issue("user-a\nhash-1", device);
  EXPECT_EQ(tokens.Check(token, "user-a\nhash-1"), device);
  EXPECT_EQ(tokens.Check(token, "user-b\nhash-1"), std::nullopt) << "another account's";
  EXPECT_EQ(tokens.Check(token, "user-a\nhash-2"), std::nullopt) << "the password changed since";
  EXPECT_NE(DeviceTokens::AccountBinding("user-a", "sealed-1"),
            DeviceTokens::AccountBinding("user-a", "sealed-2"));
  DeviceTokens other_key("another-key-of-thirty-two-bytes!", absl::Hours(24 * 90), clock);
  EXPECT_EQ(other_key.Check(token, "user-a\nhash-1"), std::nullopt) << "made with another key";
  std::string tampered = token;
  tampered[0] = tampered[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(tokens.Check(tampered, "user-a\nhash-1"), std::nullopt) << "device id changed";
  std::string later = tokens.Issue("user-a\nhash-1", device);
  std::string moved_expiry = device + "." + "99999999999" + later.substr(later.rfind('.'));
  EXPECT_EQ(tokens.Check(moved_expiry, "user-a\nhash-1"), std::nullopt) << "expiry pushed out";
  for (const char* garbage : {"", ".", "..", "a.b.c", "a.1.", "a.b.c.d"}) {
    EXPECT_EQ(tokens.Check(garbage, "user-a\nhash-1"), std::nullopt) << garbage;
  }
  clock.Advance(absl::Hours(24 * 90) + absl::Seconds(1));
  EXPECT_EQ(tokens.Check(token, "user-a\nhash-1"), std::nullopt) << "expired";
  EXPECT_NE(DeviceTokens::NewDeviceId(), device);
}

}  // namespace
}  // namespace helpline::identity
