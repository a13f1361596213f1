#include "services/runtime/auth/token_verifier.h"

#include <algorithm>
#include <cstdlib>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/runtime/server/log.h"

namespace helpline::auth {
namespace {

absl::Status Refused(std::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("access token refused: ", std::string(why)));
}

bool AudienceMatches(const nlohmann::json& aud, const std::string& audience) {
  if (aud.is_string()) return aud.get<std::string>() == audience;
  if (aud.is_array()) {
    return std::any_of(aud.begin(), aud.end(), [&](const nlohmann::json& item) {
      return item.is_string() && item.get<std::string>() == audience;
    });
  }
  return false;
}

// Verified tokens remembered; a full cache starts again empty.
constexpr size_t kMaxVerifiedTokens = 100000;

}  // namespace

bool Principal::HasRole(std::string_view role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

void AddAuthKeys(server::ConfigSchema& schema) {
  schema.String("auth.issuer", "helpline-identity", "the iss every access token must carry")
      .String("auth.audience", "helpline", "the aud every access token must carry")
      .Duration("auth.leeway", absl::Seconds(30), absl::ZeroDuration(), absl::Minutes(2),
                "clock skew tolerated on exp and nbf")
      .String("auth.trusted_proxies", "",
              "comma-separated CIDRs of the proxies in front (the gateway): for calls from them, "
              "limits per client address use the X-Forwarded-For they send");
}

TrustedProxies TrustedProxiesFromConfig(const server::Config& config) {
  absl::StatusOr<TrustedProxies> proxies =
      TrustedProxies::Parse(config.GetString("auth.trusted_proxies"));
  if (!proxies.ok()) {
    log::Error("cannot start: auth.trusted_proxies", {{"error", proxies.status().ToString()}});
    std::exit(1);
  }
  return *std::move(proxies);
}

VerifierOptions VerifierOptionsFromConfig(const server::Config& config) {
  VerifierOptions options;
  options.issuer = config.GetString("auth.issuer");
  options.audience = config.GetString("auth.audience");
  options.leeway = config.GetDuration("auth.leeway");
  return options;
}

TokenVerifier::TokenVerifier(VerifierOptions options, PublicKeySource& keys, const Clock& clock)
    : options_(std::move(options)), source_(keys), clock_(clock) {}

std::optional<Ed25519Key> TokenVerifier::PublishedKey(const std::string& kid) {
  for (const Ed25519Key& key : keys_) {
    if (key.kid == kid) return key;
  }
  return std::nullopt;
}

bool TokenVerifier::KeysUnreachable() {
  absl::MutexLock lock(&mutex_);
  return last_attempt_failed_;
}

std::optional<Ed25519Key> TokenVerifier::FindKey(const std::string& kid) {
  absl::MutexLock lock(&mutex_);
  std::optional<Ed25519Key> key = PublishedKey(kid);
  const absl::Time now = absl::Now();
  const bool stale = now - last_refresh_ > options_.max_key_age;
  if (key && !stale) return key;
  if (refreshing_) {
    // Stale keys serve until the fetch under way ends; an unknown kid waits for it.
    if (key) return key;
    mutex_.Await(absl::Condition(
        +[](bool* refreshing) { return !*refreshing; }, &refreshing_));
    return PublishedKey(kid);
  }
  const absl::Duration spacing =
      last_attempt_failed_ ? options_.retry_interval : options_.min_refresh_interval;
  if ((!stale || last_attempt_failed_) && now - last_attempt_ < spacing) return key;
  refreshing_ = true;
  last_attempt_ = now;
  absl::StatusOr<std::vector<Ed25519Key>> fetched;
  {
    mutex_.Unlock();
    absl::Cleanup relock = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      mutex_.Lock();
      refreshing_ = false;
    };
    fetched = source_.FetchKeys();
  }
  last_attempt_failed_ = !fetched.ok();
  if (!fetched.ok()) {
    log::Warn("cannot refresh the token signing keys", {{"error", fetched.status().ToString()}});
    return key;
  }
  keys_ = *std::move(fetched);
  last_refresh_ = now;
  {
    // Tokens signed with a key that is no longer published are checked again.
    absl::MutexLock verified_lock(&verified_mutex_);
    for (auto it = verified_.begin(); it != verified_.end();) {
      if (PublishedKey(it->second.kid)) {
        ++it;
      } else {
        verified_.erase(it++);
      }
    }
  }
  return PublishedKey(kid);
}

absl::StatusOr<Principal> TokenVerifier::Verify(std::string_view token) {
  absl::Time now = clock_.Now();
  {
    absl::MutexLock lock(&verified_mutex_);
    auto found = verified_.find(absl::string_view(token.data(), token.size()));
    if (found != verified_.end()) {
      if (now <= found->second.principal.expires_at + options_.leeway &&
          absl::Now() - found->second.keys_fetched_at < options_.max_key_age) {
        return found->second.principal;
      }
      verified_.erase(found);
    }
  }
  std::string kid;
  absl::StatusOr<Principal> principal = VerifyFully(token, &kid);
  if (principal.ok()) {
    // Remembered only while its key is published, from when the keys were
    // last fetched: no longer than the keys themselves are trusted.
    absl::MutexLock lock(&mutex_);
    if (PublishedKey(kid)) {
      absl::MutexLock verified_lock(&verified_mutex_);
      if (verified_.size() >= kMaxVerifiedTokens) verified_.clear();
      verified_[std::string(token)] = Verified{*principal, std::move(kid), last_refresh_};
    }
  }
  return principal;
}

absl::StatusOr<Principal> TokenVerifier::VerifyFully(std::string_view token, std::string* kid_out) {
  absl::StatusOr<ParsedToken> parsed = ParseToken(token);
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& header = parsed->header;
  const nlohmann::json& claims = parsed->claims;
  if (StringField(header, "alg") != "EdDSA") return Refused("only alg EdDSA is accepted");
  if (header.contains("crit")) return Refused("critical header extensions are not supported");
  std::string kid = StringField(header, "kid");
  if (kid.empty()) return Refused("no kid");
  std::optional<Ed25519Key> key = FindKey(kid);
  if (!key && KeysUnreachable()) {
    // Maybe a key published since: the caller should try again, not sign in again.
    return absl::UnavailableError(
        "cannot check the access token's signing key now (identity unreachable); try again");
  }
  if (!key) return Refused(absl::StrCat("unknown signing key '", kid, "'"));
  if (!VerifySignature(*parsed, *key)) return Refused("bad signature");
  *kid_out = kid;

  if (StringField(claims, "iss") != options_.issuer) return Refused("wrong issuer");
  if (!claims.contains("aud") || !AudienceMatches(claims["aud"], options_.audience)) {
    return Refused("wrong audience");
  }
  if (!claims.contains("exp") || !claims["exp"].is_number_integer()) return Refused("no exp");
  absl::Time now = clock_.Now();
  absl::Time expires = absl::FromUnixSeconds(claims["exp"].get<int64_t>());
  if (now > expires + options_.leeway) return Refused("expired");
  if (claims.contains("nbf")) {
    if (!claims["nbf"].is_number_integer()) return Refused("bad nbf");
    if (now + options_.leeway < absl::FromUnixSeconds(claims["nbf"].get<int64_t>())) {
      return Refused("not valid yet");
    }
  }
  if (!claims.contains("iat") || !claims["iat"].is_number_integer()) return Refused("no iat");
  if (expires - absl::FromUnixSeconds(claims["iat"].get<int64_t>()) >
      options_.max_lifetime + options_.leeway) {
    return Refused("lifetime longer than allowed");
  }

  Principal principal;
  principal.user_id = StringField(claims, "sub");
  if (principal.user_id.empty()) return Refused("no subject");
  principal.token_id = StringField(claims, "jti");
  principal.expires_at = expires;
  if (claims.contains("roles")) {
    if (!claims["roles"].is_array()) return Refused("roles must be a list");
    for (const nlohmann::json& role : claims["roles"]) {
      if (!role.is_string()) return Refused("roles must be strings");
      principal.roles.push_back(role.get<std::string>());
    }
  }
  return principal;
}

}  // namespace helpline::auth
