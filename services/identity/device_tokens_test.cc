#include "services/identity/device_tokens.h"

#include "gtest/gtest.h"

namespace helpline::identity {
namespace {

TEST(DeviceTokensTest, OnlyTheAccountsOwnUnexpiredUntamperedTokenNamesTheDevice) {
  FakeClock clock;
  DeviceTokens tokens("k3y-of-thirty-two-bytes-for-test", absl::Hours(24 * 90), clock);
  const std::string device = DeviceTokens::NewDeviceId();
  const std::string token = tokens.Issue("claim-a", device);
  EXPECT_EQ(tokens.Check(token, "claim-a"), device);
  EXPECT_EQ(tokens.Check(token, "claim-b"), std::nullopt) << "another account's";
  DeviceTokens other_key("another-key-of-thirty-two-bytes!", absl::Hours(24 * 90), clock);
  EXPECT_EQ(other_key.Check(token, "claim-a"), std::nullopt) << "made with another key";
  std::string tampered = token;
  tampered[0] = tampered[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(tokens.Check(tampered, "claim-a"), std::nullopt) << "device id changed";
  std::string later = tokens.Issue("claim-a", device);
  std::string moved_expiry = device + "." + "99999999999" + later.substr(later.rfind('.'));
  EXPECT_EQ(tokens.Check(moved_expiry, "claim-a"), std::nullopt) << "expiry pushed out";
  for (const char* garbage : {"", ".", "..", "a.b.c", "a.1.", "a.b.c.d"}) {
    EXPECT_EQ(tokens.Check(garbage, "claim-a"), std::nullopt) << garbage;
  }
  clock.Advance(absl::Hours(24 * 90) + absl::Seconds(1));
  EXPECT_EQ(tokens.Check(token, "claim-a"), std::nullopt) << "expired";
  EXPECT_NE(DeviceTokens::NewDeviceId(), device);
}

}  // namespace
}  // namespace helpline::identity
