// helpline-identity: accounts, sign-in and the token signing keys.
#include <functional>
#include <iostream>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/identity/domain/identity_domain.h"
#include "services/identity/domain/reactions.h"
#include "services/identity/domain/read_model.h"
#include "services/identity/domain/validation.h"
#include "services/identity/identity_service.h"
#include "services/identity/key_shredder.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/service_host.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/privacy/key_cache.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/server.h"

namespace helpline::identity {
namespace {

constexpr char kService[] = "identity";

server::ConfigSchema Schema() {
  server::ConfigSchema schema;
  server::AddServerKeys(schema);
  kafka::AddKafkaKeys(schema);
  es::AddProcessorKeys(schema);
  AddClockKeys(schema);
  auth::AddAuthKeys(schema);
  schema
      .String("topics.prefix", "", "prepended to every topic and group name (tests)")
      .String("identity.signing_keys_file", std::nullopt,
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

// The admin account from the configuration, retried while identity cannot
// answer yet (Kafka, or the hashing queue full at start).
void BootstrapAdmin(IdentityService& service, const server::Config& config,
                    server::ShutdownSignal& shutdown) {
  const std::string& raw_email = config.GetString("admin.email");
  if (raw_email.empty()) return;
  std::optional<std::string> email = NormaliseEmail(raw_email);
  if (!email) {
    log::Error("admin.email is not an email address; no admin bootstrapped");
    return;
  }
  for (;;) {
    absl::Status done = service.BootstrapAdmin(*email, config.GetString("admin.password"));
    if (done.ok()) {
      log::Info("admin account ready");
      return;
    }
    const bool passing = done.code() == absl::StatusCode::kUnavailable ||
                         done.code() == absl::StatusCode::kResourceExhausted ||
                         done.code() == absl::StatusCode::kDeadlineExceeded ||
                         done.code() == absl::StatusCode::kAborted;
    if (!passing) {
      log::Error("admin bootstrap refused", {{"error", done.ToString()}});
      return;
    }
    log::Warn("admin bootstrap failed; retrying in 5 s", {{"error", done.ToString()}});
    if (shutdown.WaitFor(absl::Seconds(5))) return;
  }
}

int Main(int argc, char** argv) {
  server::ShutdownSignal shutdown;
  server::Config config = server::LoadConfigOrExit(Schema(), argc, argv);
  server::InitLogging(kService, config);
  log::Info("starting", {{"config", config.Describe()}});

  es::ServiceHost host(kService, config, IdentityType());
  const std::string& prefix = host.prefix;
  const es::ServiceTopics& topics = host.topics;
  const std::string& keys_topic = topics.keys;

  privacy::PiiVault vault = OrExit(privacy::PiiVault::Create(DecodeKey(config, "identity.key_encryption_key"),
                                           config.GetString("identity.key_encryption_key_id")),
                          "key-encryption key");
  PasswordHasher passwords = OrExit(
      PasswordHasher::Create(static_cast<uint64_t>(config.GetInt("identity.argon2_passes")),
                             static_cast<uint64_t>(config.GetInt("identity.argon2_memory_mib")) << 20,
                             config.GetBool("identity.argon2_allow_weak"),
                             HashLimits(config)),
      "password hashing");
  std::unique_ptr<SigningKeys> signing_keys =
      OrExit(SigningKeys::Load(config.GetString("identity.signing_keys_file"),
                               config.GetDuration("identity.signing_keys_check_interval")),
             "signing keys");



  IdentityReadModel read_model;
  es::EventFeed events(*host.kafka, {topics.events, topics.deadletter, "identity.read-model"},
                       [] { return std::make_unique<v1::IdentityEvent>(); }, read_model);
  privacy::KeyCache keys(vault);
  es::EventFeed keys_feed(*host.kafka, {keys_topic, topics.deadletter, "identity.key-cache"},
                          [] { return std::make_unique<v1::DataKeyRecord>(); }, keys);

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
  KeyShredder shredder(keys, keys_feed, keys_topic);
  es::TypedReaction<catalog::v1::CatalogEvent, v1::IdentityCommand> expert_reaction(ExpertGetsRole);
  es::Reactor reactor(*host.kafka,
                      {prefix + "identity.reactions", topics.commands, topics.deadletter},
                      {{prefix + "identity.email-claims", topics.events, &claim_reaction},
                       {prefix + "identity.key-shredder", topics.events, &shredder},
                       {prefix + "identity.expert-role", prefix + "helpline.catalog.events",
                        &expert_reaction}});

  if (!server::StartAll({{"key cache", [&] { return keys_feed.Start(); }},
                         {"read model", [&] { return events.Start(); }},
                         {"processor", [&] { return host.processor.Start(); }},
                         {"reactions", [&] { return reactor.Start(); }}})) {
    return 1;
  }
  std::unique_ptr<es::CommandSender> sender =
      OrExit(es::CommandSender::Create(*host.kafka, {topics, ""}), "command sender");

  IdentityOptions options;
  options.issuer = config.GetString("auth.issuer");
  options.audience = config.GetString("auth.audience");
  options.access_token_ttl = config.GetDuration("identity.access_token_ttl");
  options.refresh_token_ttl = config.GetDuration("identity.refresh_token_ttl");
  options.device_token_ttl = config.GetDuration("identity.device_token_ttl");
  options.keys_topic = keys_topic;
  options.email_hash_key = DecodeKey(config, "identity.email_hash_key");
  es::Front front(*sender, events, options.command_timeout);
  IdentityService service(options,
                          IdentityParts{front, read_model, keys_feed, keys,
                                        *host.kafka->producer, vault, passwords, *signing_keys, guard,
                                        logins, host.clock, host.wall_clock});

  host.server.AddService(&service);
  if (absl::Status started = host.server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    return 1;
  }
  auto ready = [&] {
    return host.processor.InService() && events.CaughtUp() && keys_feed.CaughtUp();
  };
  host.server.ServeWhen(ready);
  std::thread bootstrap([&] {
    while (!ready() && !shutdown.WaitFor(absl::Milliseconds(50))) {
    }
    if (ready()) BootstrapAdmin(service, config, shutdown);
  });

  shutdown.Wait();
  log::Info("stopping");
  host.server.Shutdown();
  bootstrap.join();
  reactor.Stop();
  host.processor.Stop();
  events.Stop();
  keys_feed.Stop();
  sender.reset();
  return 0;
}

}  // namespace
}  // namespace helpline::identity

int main(int argc, char** argv) { return helpline::identity::Main(argc, argv); }
