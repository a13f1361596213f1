#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace helpline::auth {

// The proxies in front of a service (the gateway, an ingress) whose
// X-Forwarded-For names the client, so that limits per client address count
// browsers, not the one gateway they all come through.
class TrustedProxies {
 public:
  TrustedProxies() = default;
  // Comma-separated CIDRs ("10.0.0.0/8, fd00::/8"); empty trusts none.
  static absl::StatusOr<TrustedProxies> Parse(std::string_view cidrs);

  // The caller's address for limits: the gRPC peer ("ipv4:10.0.0.7:5000",
  // "ipv6:[::1]:5000"), or, when the peer is trusted, the last address of
  // `forwarded_for`: the client the proxy itself saw (the gateway sends
  // just that one; whatever stands before it is the caller's to make up).
  // IPv6 callers are keyed by their /64 (one host has them all):
  // "ipv4:203.0.113.7", "ipv6:2001:db8:1:2::/64".
  std::string ClientOf(std::string_view peer, std::string_view forwarded_for) const;

 private:
  struct Address {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};
  };
  struct Network {
    Address address;
    int prefix = 0;
  };
  static bool ParseAddress(std::string_view text, Address& out);
  static std::string WithoutPort(std::string_view peer);
  bool Trusted(const Address& address) const;
  static std::string Key(const Address& address);

  std::vector<Network> networks_;
};

}  // namespace helpline::auth
