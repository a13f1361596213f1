#include "services/runtime/auth/trusted_proxies.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace helpline::auth {

namespace {

// gRPC writes some peers percent-encoded ("ipv6:%5B::1%5D:5000").
std::string Unescaped(std::string_view raw) {
  std::string text(absl::StripAsciiWhitespace(absl::string_view(raw.data(), raw.size())));
  for (auto [from, to] : {std::pair<const char*, const char*>{"%5B", "["}, {"%5D", "]"},
                          {"%5b", "["}, {"%5d", "]"}, {"%25", "%"}}) {
    text = absl::StrReplaceAll(text, {{from, to}});
  }
  return text;
}

}  // namespace

// A peer the parser cannot read, keyed without its port (one key per host,
// not per connection): "unix:/path", "ipv6:[fe80::1%eth0]:5000".
std::string TrustedProxies::WithoutPort(std::string_view peer) {
  std::string text = Unescaped(peer);
  size_t colon = text.rfind(':');
  size_t scheme = text.find(':');
  bool has_port = colon != std::string::npos && colon > scheme &&
                  text.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                  colon + 1 < text.size();
  return has_port ? text.substr(0, colon) : text;
}

bool TrustedProxies::ParseAddress(std::string_view raw, Address& out) {
  std::string text = Unescaped(raw);
  if (text.rfind("ipv4:", 0) == 0 || text.rfind("ipv6:", 0) == 0) text = text.substr(5);
  // "[::1]:5000", "[::1]", "1.2.3.4:5000": the port goes.
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return false;
    text = text.substr(1, close - 1);
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    text = text.substr(0, text.find(':'));
  }
  if (inet_pton(AF_INET, text.c_str(), out.bytes.data()) == 1) {
    out.v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out.bytes.data()) == 1) {
    out.v6 = true;
    // An IPv4-mapped address is the IPv4 one.
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, out.bytes.begin())) {
      std::copy(out.bytes.begin() + 12, out.bytes.end(), out.bytes.begin());
      out.v6 = false;
    }
    return true;
  }
  return false;
}

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(std::string_view cidrs) {
  TrustedProxies proxies;
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(cidrs.data(), cidrs.size()), ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<absl::string_view> parts = absl::StrSplit(item, '/');
    Network network;
    bool ok = parts.size() == 2 && ParseAddress(std::string(parts[0]), network.address) &&
              absl::SimpleAtoi(parts[1], &network.prefix) && network.prefix >= 0 &&
              network.prefix <= (network.address.v6 ? 128 : 32);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trusted proxies: '", std::string(item), "' is not a CIDR such as 10.0.0.0/8"));
    }
    proxies.networks_.push_back(network);
  }
  return proxies;
}

bool TrustedProxies::Trusted(const Address& address) const {
  for (const Network& network : networks_) {
    if (network.address.v6 != address.v6) continue;
    int bits = network.prefix;
    bool inside = true;
    for (int i = 0; bits > 0 && inside; ++i, bits -= 8) {
      unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
      inside = (address.bytes[i] & mask) == (network.address.bytes[i] & mask);
    }
    if (inside) return true;
  }
  return false;
}

std::string TrustedProxies::Key(const Address& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (!address.v6) {
    inet_ntop(AF_INET, address.bytes.data(), text, sizeof text);
    return absl::StrCat("ipv4:", text);
  }
  std::array<unsigned char, 16> network{};
  std::copy(address.bytes.begin(), address.bytes.begin() + 8, network.begin());
  inet_ntop(AF_INET6, network.data(), text, sizeof text);
  return absl::StrCat("ipv6:", text, "/64");
}

std::string TrustedProxies::ClientOf(std::string_view peer, std::string_view forwarded_for) const {
  Address client;
  if (!ParseAddress(peer, client)) return WithoutPort(peer);
  if (Trusted(client) && !forwarded_for.empty()) {
    absl::string_view hops(forwarded_for.data(), forwarded_for.size());
    size_t comma = hops.rfind(',');
    Address forwarded;
    if (ParseAddress(std::string(comma == absl::string_view::npos ? hops : hops.substr(comma + 1)),
                     forwarded)) {
      client = forwarded;
    }
  }
  return Key(client);
}

}  // namespace helpline::auth
