#include "services/runtime/auth/trusted_proxies.h"

#include "gtest/gtest.h"

namespace helpline::auth {
namespace {

TEST(TrustedProxiesTest, OnlyATrustedPeerNamesTheClient) {
  TrustedProxies none;
  EXPECT_EQ(none.ClientOf("ipv4:127.0.0.1:5000", "203.0.113.7"), "ipv4:127.0.0.1")
      << "anybody may send the header";
  TrustedProxies gateway = *TrustedProxies::Parse("127.0.0.1/32, 10.0.0.0/8");
  EXPECT_EQ(gateway.ClientOf("ipv4:127.0.0.1:5000", "203.0.113.7"), "ipv4:203.0.113.7");
  EXPECT_EQ(gateway.ClientOf("ipv4:127.0.0.1:5000", ""), "ipv4:127.0.0.1") << "no header";
  EXPECT_EQ(gateway.ClientOf("ipv4:192.0.2.1:5000", "203.0.113.7"), "ipv4:192.0.2.1")
      << "not a proxy of ours";
  // Only the last hop is the proxy's own word; the ones before it are the
  // caller's to make up (a proxy in the trusted range that appends is no
  // way to pick a fresh key per call).
  EXPECT_EQ(gateway.ClientOf("ipv4:10.1.2.3:5000", "1.1.1.1, 203.0.113.7"), "ipv4:203.0.113.7");
  EXPECT_EQ(gateway.ClientOf("ipv4:10.1.2.3:5000", "198.51.100.1, 10.9.9.9"), "ipv4:10.9.9.9");
  EXPECT_EQ(gateway.ClientOf("ipv4:10.1.2.3:5000", "203.0.113.7, garbage"), "ipv4:10.1.2.3")
      << "an unreadable address: the peer";
}

TEST(TrustedProxiesTest, IPv6ClientsAreTheirSlash64) {
  TrustedProxies gateway = *TrustedProxies::Parse("::1/128");
  EXPECT_EQ(gateway.ClientOf("ipv6:[::1]:5000", "2001:db8:1:2:aaaa::1"), "ipv6:2001:db8:1:2::/64");
  EXPECT_EQ(gateway.ClientOf("ipv6:[::1]:5000", "[2001:db8:1:2:bbbb::9]:4711"),
            "ipv6:2001:db8:1:2::/64")
      << "the same host's other address is the same client";
  EXPECT_EQ(gateway.ClientOf("ipv6:[::ffff:127.0.0.1]:5000", "203.0.113.7"), "ipv4:127.0.0.1")
      << "an IPv4-mapped peer is IPv4 (not trusted here)";
  EXPECT_EQ(gateway.ClientOf("ipv6:%5B::1%5D:5000", "2001:db8:1:2::1"), "ipv6:2001:db8:1:2::/64")
      << "a percent-encoded peer";
  EXPECT_EQ(gateway.ClientOf("ipv6:[fe80::1%eth0]:5000", ""), "ipv6:[fe80::1%eth0]")
      << "unreadable: keyed without its port";
  EXPECT_EQ(gateway.ClientOf("unix:/run/helpline.sock", ""), "unix:/run/helpline.sock");
}

TEST(TrustedProxiesTest, NotACidrIsAClearError) {
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "::1/129", "example.com/8", "10.0.0.0/x"}) {
    absl::StatusOr<TrustedProxies> parsed = TrustedProxies::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find("not a CIDR"), std::string::npos) << bad;
  }
  EXPECT_TRUE(TrustedProxies::Parse("").ok());
  EXPECT_TRUE(TrustedProxies::Parse(" 10.0.0.0/8 ,fd00::/8 ").ok());
}

}  // namespace
}  // namespace helpline::auth
