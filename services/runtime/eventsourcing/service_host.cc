#include "services/runtime/eventsourcing/service_host.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/runtime/server/log.h"

namespace helpline::es {
namespace {

SystemClock ClockOrExit(const server::Config& config) {
  absl::StatusOr<SystemClock> clock = ClockFromConfig(config);
  if (!clock.ok()) {
    log::Error("cannot start: clock", {{"error", clock.status().ToString()}});
    std::exit(2);
  }
  return *clock;
}

std::unique_ptr<kafka::SharedClients> KafkaOrExit(const kafka::ClientConfig& client) {
  absl::StatusOr<std::unique_ptr<kafka::SharedClients>> clients = kafka::SharedClients::Create(client);
  if (!clients.ok()) {
    log::Error("cannot start: kafka", {{"error", clients.status().ToString()}});
    std::exit(2);
  }
  log::Info("kafka clients", {{"librdkafka", kafka::LibraryVersion()}});
  return *std::move(clients);
}

// The configured name, or one stable across restarts on this host: its
// name and the gRPC port (two replicas on one host cannot share a port).
std::string ReplicaName(const server::Config& config) {
  if (!config.GetString("processor.replica").empty()) return config.GetString("processor.replica");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string& listen = config.GetString("grpc.listen");
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(listen.rfind(':') + 1), &port) || port == 0) {
    return absl::StrCat(host, "-pid", getpid());
  }
  return absl::StrCat(host, "-", port);
}

ProcessorOptions ProcessorOptionsFor(const std::string& service, const std::string& prefix,
                                     const ServiceTopics& topics, const server::Config& config,
                                     double clock_rate) {
  ProcessorOptions options;
  options.service = prefix + service;
  options.replica = ReplicaName(config);
  options.topics = topics;
  options.clock_rate = clock_rate;
  return options;
}

// How long a write waits for the processor and the read model.
constexpr absl::Duration kWriteTimeout = absl::Seconds(10);

server::Config ConfigOrExit(const std::string& service, const server::ConfigSchema& schema,
                            int argc, char** argv) {
  server::Config config = server::LoadConfigOrExit(schema, argc, argv);
  server::InitLogging(service, config);
  log::Info("starting", {{"config", config.Describe()}});
  return config;
}

}  // namespace

void AddServiceKeys(server::ConfigSchema& schema) {
  server::AddServerKeys(schema);
  kafka::AddKafkaKeys(schema);
  AddProcessorKeys(schema);
  AddClockKeys(schema);
  auth::AddAuthKeys(schema);
  schema.String("topics.prefix", "", "prepended to every topic and group name (tests)");
}

void AddCurrencyKey(server::ConfigSchema& schema) {
  schema.String("currency", "EUR",
                "the deployment's currency (ISO 4217): every price, budget and the ledger are in it");
}

std::string CurrencyOrExit(const server::Config& config) {
  const std::string currency = config.GetString("currency");
  if (currency.size() != 3 || !std::all_of(currency.begin(), currency.end(),
                                           [](char c) { return c >= 'A' && c <= 'Z'; })) {
    log::Error("bad config: currency must be an ISO 4217 code such as EUR");
    std::exit(2);
  }
  return currency;
}

void AddProcessorKeys(server::ConfigSchema& schema) {
  schema.String("processor.replica", "",
                "names this replica's transactional producer, stably across its restarts (the "
                "pod's name); two replicas running at once must not share it. Empty: the host's "
                "name and the gRPC port");
}

ServiceHost::ServiceHost(const std::string& service, const server::ConfigSchema& schema, int argc,
                         char** argv, const AggregateType& type)
    : service(service),
      config(ConfigOrExit(service, schema, argc, argv)),
      client(kafka::ClientConfigFromConfig(config)),
      clock(ClockOrExit(config)),
      wall_clock(),
      prefix(config.GetString("topics.prefix")),
      topics(ServiceTopics::For(service, prefix)),
      kafka(KafkaOrExit(client)),
      server(server::ServerOptionsFromConfig(service, config)),
      processor_metrics(server.metrics().registry(), absl::StrCat(service, ".processor")),
      consumer_metrics(server.metrics().registry()),
      processor(client, ProcessorOptionsFor(service, prefix, topics, config, clock.rate()), type,
                clock, &processor_metrics),
      closed_accounts(*kafka, prefix, service, topics.deadletter),
      lag_gauges_("lag gauges", absl::Seconds(1), [this] {
        processor.ReportLag();
        for (const std::unique_ptr<EventFeed>& feed : feeds_) feed->ReportLag();
        if (reactor_ != nullptr) reactor_->ReportLag();
      }) {
  // The shared producer writes commands, reactions and dead letters; after a
  // fatal error (its id refused, idempotence broken) it writes nothing again.
  server.AliveWhile([this] { return kafka->producer->FatalError().ok(); });
}

ServiceHost::~ServiceHost() {
  loops_.StopAll();
  parts_.StopAll();
}

EventFeed& ServiceHost::Feed(const std::string& topic, const std::string& name,
                             Projection& projection,
                             std::function<std::unique_ptr<google::protobuf::Message>()> new_event,
                             std::function<absl::Status(google::protobuf::Message&)> before_apply) {
  const std::string feed_name = absl::StrCat(service, ".", name);
  feeds_.push_back(std::make_unique<EventFeed>(
      *kafka, EventFeedOptions{topic, topics.deadletter, feed_name, std::move(before_apply),
                                &consumer_metrics},
      std::move(new_event), projection));
  parts_.Add(feed_name, *feeds_.back());
  return *feeds_.back();
}

void ServiceHost::UseClosedAccounts() {
  if (closed_accounts_used_) return;
  closed_accounts_used_ = true;
  parts_.Add("closed accounts", closed_accounts);
}

void ServiceHost::React(const std::vector<ReactionTo>& reactions) {
  std::vector<Subscription> subscriptions;
  for (const ReactionTo& reaction : reactions) {
    subscriptions.push_back({absl::StrCat(prefix, service, ".", reaction.name),
                             ServiceTopics::For(reaction.service, prefix).events,
                             reaction.reaction});
  }
  reactor_ = std::make_unique<Reactor>(
      *kafka, ReactorOptions{.group = absl::StrCat(prefix, service, ".reactions"),
                             .commands_topic = topics.commands,
                             .deadletter_topic = topics.deadletter,
                             .metrics = &consumer_metrics},
      std::move(subscriptions));
}

privacy::PersonalText& ServiceHost::PersonalTexts() {
  if (personal_ == nullptr) {
    UseClosedAccounts();
    personal_ = privacy::PersonalText::FromConfigOrExit(
        *kafka, config, {topics.keys, topics.deadletter, absl::StrCat(service, ".personal-keys")},
        [this](const std::string& user_id) { return closed_accounts.IsClosed(user_id); });
    parts_.Add("personal keys", *personal_);
  }
  return *personal_;
}

auth::CallGuard& ServiceHost::Callers(double per_second) {
  if (callers_ == nullptr) {
    UseClosedAccounts();
    callers_ = std::make_unique<auth::IdentityCallGuard>(config, wall_clock, per_second, server);
    callers_->guard().RefuseClosedAccounts(
        [this](const std::string& user_id) { return closed_accounts.IsClosed(user_id); });
  }
  return callers_->guard();
}

Front& ServiceHost::front() {
  if (front_ == nullptr) {
    if (own_events_ == nullptr) {
      log::Error("a front needs the service's own read model (OwnEvents) first");
      std::abort();
    }
    front_ = std::make_unique<Front>(*kafka, topics, *own_events_, kWriteTimeout);
  }
  return *front_;
}

int ServiceHost::Run(const std::vector<grpc::Service*>& services) {
  parts_.Add("processor", processor);
  if (reactor_ != nullptr) parts_.Add("reactions", *reactor_);
  if (front_ != nullptr) parts_.Add("front", *front_);
  if (!parts_.StartAll().ok()) return 1;
  for (grpc::Service* service : services) server.AddService(service);
  if (absl::Status started = server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    parts_.StopAll();  // before main's read models and reactions go away
    return 1;
  }
  // Readers replaying at the start are not behind yet: their lag shows once
  // the service is ready (loops start then).
  loops_.Add("lag gauges", lag_gauges_);
  // Not serving for a while: the log says what it is waiting for, every
  // 15 s (called on the readiness thread only).
  server.ServeWhen([this, waiting_since = std::optional<absl::Time>(),
                    told_at = absl::InfinitePast()]() mutable {
    if (parts_.Ready() && loops_.Ready()) {
      waiting_since.reset();
      return true;
    }
    const absl::Time now = absl::Now();
    if (!waiting_since) waiting_since = now;
    if (now - *waiting_since >= absl::Seconds(15) && now - told_at >= absl::Seconds(15)) {
      told_at = now;
      std::vector<std::string> waiting = parts_.NotReady();
      for (const std::string& loop : loops_.NotReady()) waiting.push_back(loop);
      log::Warn("not serving yet: waiting for parts",
                {{"parts", absl::StrJoin(waiting, ", ")},
                 {"seconds", absl::ToInt64Seconds(now - *waiting_since)}});
    }
    return false;
  });
  // Loops act on the read models: only once those have caught up.
  int status = 0;
  while (!parts_.Ready()) {
    if (shutdown.WaitFor(absl::Milliseconds(50))) break;
  }
  if (parts_.Ready() && !loops_.StartAll().ok()) {
    status = 1;
  } else {
    shutdown.Wait();
  }
  log::Info("stopping");
  for (const std::function<void()>& first : on_stopping_) first();
  server.Shutdown();
  loops_.StopAll();
  parts_.StopAll();
  return status;
}

}  // namespace helpline::es
