// helpline-identity: accounts, sign-in and the token signing keys.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "helpline/catalog/v1/events.pb.h"
#include "services/identity/admin_bootstrap.h"
#include "services/identity/domain/identity_domain.h"
#include "services/identity/domain/reactions.h"
#include "services/identity/domain/read_model.h"
#include "services/identity/identity_service.h"
#include "services/identity/key_shredder.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/auth/rate_limiter.h"
#include "services/runtime/auth/token_verifier.h"
#include "services/runtime/auth/trusted_proxies.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/privacy/key_cache.h"
#include "services/runtime/privacy/pii_vault.h"
#include "services/runtime/server/log.h"

namespace helpline::identity {
namespace {

constexpr char kService[] = "identity";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  es::AddServiceKeys(schema);
  schema.String("identity.signing_keys_file", std::nullopt,
              "JSON key set the access tokens are signed with (a mounted Secret)")
      .Duration("identity.signing_keys_check_interval", absl::Seconds(10), absl::Milliseconds(10),
                absl::Hours(1), "how often the signing keys file is looked at for a rotation")
      .Secret("identity.key_encryption_key",
              "base64url of 32 bytes: wraps the per-user data keys (from a Secret)")
      .String("identity.key_encryption_key_id", "kek-1", "names the key-encryption key in use")
      .Secret("identity.email_hash_key",
              "base64url of 32 bytes: keys the email hash that names email claims (from a Secret)")
      .Int("identity.argon2_passes", 2, 1, 10, "argon2id time cost")
      .Int("identity.argon2_memory_mib", 19, 1, 1024, "argon2id memory cost")
      .Bool("identity.argon2_allow_weak", false,
            "allow argon2id below the OWASP minimum (19 MiB, 2 passes): tests only")
      .Int("identity.hash_concurrency", 2, 1, 256,
           "password hashes run at once (each ~19 MiB and a core for tens of ms): about the "
           "cores the process may use (a container's CPU limit, not the node's cores)")
      .Duration("identity.hash_queue_wait", absl::Seconds(2), absl::Milliseconds(1),
                absl::Seconds(30),
                "how long a sign-in waits for its turn to hash, then RESOURCE_EXHAUSTED")
      .Duration("identity.access_token_ttl", absl::Minutes(15), absl::Seconds(10), absl::Minutes(15),
                "lifetime of an access token")
      .Duration("identity.device_token_ttl", absl::Hours(24 * 90), absl::Hours(1),
                absl::Hours(24 * 400),
                "how long a device that signed in keeps sign-in attempts of its own")
      .Duration("identity.refresh_token_ttl", absl::Hours(24 * 30), absl::Minutes(5),
                absl::Hours(24 * 90), "lifetime of a session without use")
      .Double("identity.logins_per_minute_per_account", 10, 0.1, 1e6,
              "login attempts an account takes per minute (burst: the same number)")
      .Double("identity.requests_per_second_per_caller", 20, 0.1, 1e6,
              "calls a user or peer address makes per second (burst: 5 times that)")
      .String("admin.email", "", "the admin account made at start if missing")
      .Secret("admin.password", "its password (from a Secret)");
  return schema;
}

PasswordHasher::Limits HashLimits(const server::Config& config) {
  PasswordHasher::Limits limits;
  limits.concurrency = static_cast<int>(config.GetInt("identity.hash_concurrency"));
  limits.queue_wait = config.GetDuration("identity.hash_queue_wait");
  return limits;
}

std::string DecodeKey(const server::Config& config, const std::string& key) {
  absl::StatusOr<std::string> bytes = Base64UrlDecode(config.GetString(key));
  if (!bytes.ok() || bytes->size() != 32) {
    std::cerr << "helpline-identity: bad config: '" << key
              << "' must be base64url of 32 bytes (set "
              << server::ConfigSchema::EnvironmentName(key) << ")\n";
    std::exit(2);
  }
  return *bytes;
}

template <class T>
T OrExit(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    log::Error(absl::StrCat("cannot start: ", what), {{"error", value.status().ToString()}});
    std::exit(1);
  }
  return *std::move(value);
}

int Main(int argc, char** argv) {
  es::ServiceHost host(kService, Schema(), argc, argv, IdentityType());
  const server::Config& config = host.config;
  privacy::PiiVault vault =
      OrExit(privacy::PiiVault::Create(DecodeKey(config, "identity.key_encryption_key"),
                                       config.GetString("identity.key_encryption_key_id")),
             "key-encryption key");
  PasswordHasher passwords = OrExit(
      PasswordHasher::Create(static_cast<uint64_t>(config.GetInt("identity.argon2_passes")),
                             static_cast<uint64_t>(config.GetInt("identity.argon2_memory_mib")) << 20,
                             config.GetBool("identity.argon2_allow_weak"), HashLimits(config)),
      "password hashing");
  std::unique_ptr<SigningKeys> signing_keys =
      OrExit(SigningKeys::Load(config.GetString("identity.signing_keys_file"),
                               config.GetDuration("identity.signing_keys_check_interval")),
             "signing keys");

  // The data keys first: the read model's users open with them.
  privacy::KeyCache keys(vault);
  es::EventFeed& keys_feed =
      host.RecordsOf<v1::DataKeyRecord>(host.topics.keys, "key-cache", keys);
  IdentityReadModel read_model;
  host.OwnEvents<v1::IdentityEvent>(read_model);

  // Its own keys are local: no reason to ration refreshes.
  auth::VerifierOptions verifier_options = auth::VerifierOptionsFromConfig(config);
  verifier_options.min_refresh_interval = absl::ZeroDuration();
  verifier_options.max_key_age = absl::Seconds(1);
  auth::TokenVerifier verifier(verifier_options, *signing_keys, host.wall_clock);
  double per_second = config.GetDouble("identity.requests_per_second_per_caller");
  auth::RateLimiter per_caller(per_second, per_second * 5, host.wall_clock);
  double per_minute = config.GetDouble("identity.logins_per_minute_per_account");
  auth::RateLimiter logins(per_minute / 60, per_minute, host.wall_clock);
  auth::CallGuard guard(&verifier, per_caller, [&] { return host.server.serving(); },
                        auth::TrustedProxiesFromConfig(config));

  es::TypedReaction<v1::IdentityEvent, v1::IdentityCommand> claim_reaction(ClaimFollowsAccount);
  KeyShredder shredder(keys, keys_feed, host.topics.keys);
  es::TypedReaction<catalog::v1::CatalogEvent, v1::IdentityCommand> expert_reaction(ExpertGetsRole);
  host.React({{"email-claims", "identity", &claim_reaction},
              {"key-shredder", "identity", &shredder},
              {"expert-role", "catalog", &expert_reaction}});

  IdentityOptions options;
  options.issuer = config.GetString("auth.issuer");
  options.audience = config.GetString("auth.audience");
  options.access_token_ttl = config.GetDuration("identity.access_token_ttl");
  options.refresh_token_ttl = config.GetDuration("identity.refresh_token_ttl");
  options.device_token_ttl = config.GetDuration("identity.device_token_ttl");
  options.keys_topic = host.topics.keys;
  options.email_hash_key = DecodeKey(config, "identity.email_hash_key");
  IdentityService service(options,
                          IdentityParts{host.front(), read_model, keys_feed, keys,
                                        *host.kafka->producer, vault, passwords, *signing_keys,
                                        guard, logins, host.clock, host.wall_clock});
  AdminBootstrap admin(service, config.GetString("admin.email"), config.GetString("admin.password"));
  host.AddLoop("admin bootstrap", admin);
  return host.Run({&service});
}

}  // namespace
}  // namespace helpline::identity

int main(int argc, char** argv) { return helpline::identity::Main(argc, argv); }
