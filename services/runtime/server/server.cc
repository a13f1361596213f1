#include "services/runtime/server/server.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "grpcpp/resource_quota.h"
#include "services/runtime/server/log.h"

namespace helpline::server {
namespace {

int shutdown_pipe[2] = {-1, -1};
std::atomic<bool> shutdown_requested{false};

void OnShutdownSignal(int) {
  shutdown_requested.store(true);
  char byte = 1;
  [[maybe_unused]] ssize_t ignored = write(shutdown_pipe[1], &byte, 1);
}

absl::Status WritePortsFile(const std::string& path, int grpc_port, int metrics_port,
                            const std::map<std::string, int>& other_ports) {
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    nlohmann::json ports{{"grpc_port", grpc_port}, {"metrics_port", metrics_port}};
    for (const auto& [name, port] : other_ports) ports[name + "_port"] = port;
    out << ports.dump() << "\n";
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", temporary));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", temporary, " to ", path));
  }
  return absl::OkStatus();
}

class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return plugin->name() == "proto_server_reflection";
    });
  }
};

}  // namespace

void AddServerKeys(ConfigSchema& schema) {
  schema.String("grpc.listen", "0.0.0.0:50051", "host:port of the gRPC server; port 0 picks one")
      .Int("grpc.max_message_bytes", 4 << 20, 1024, 64 << 20,
           "largest request or response message accepted")
      .Bool("grpc.reflection", true,
            "serve gRPC server reflection (for grpcurl and buf curl); off in production")
      .Int("grpc.max_threads", 1000, 4, 100000,
           "handler threads of unary calls at most (watch streams hold none); calls past "
           "them are RESOURCE_EXHAUSTED, not more memory")
      .Int("grpc.idle_threads", 16, 1, 1024,
           "handler threads kept waiting for calls (above it, threads end when idle)")
      .Duration("grpc.max_connection_age", absl::Minutes(5), absl::Seconds(10), absl::Hours(24),
                "a client's connection is closed gracefully after about this long (10% jitter), so "
                "clients behind one address (the gateway) spread over replicas that scale out")
      .Duration("grpc.max_connection_age_grace", absl::Minutes(11), absl::Seconds(1),
                absl::Hours(24),
                "how long calls open on such a connection may go on: longer than the longest "
                "Watch stream")
      .String("grpc.tls.cert_file", "",
              "PEM certificate chain of the gRPC server; set: TLS, empty: plaintext")
      .String("grpc.tls.key_file", "", "its private key (PEM)")
      .String("grpc.tls.client_ca_file", "",
              "PEM CA: set, only clients presenting a certificate it signed are served (mutual TLS)")
      .String("grpc.health_listen", "",
              "host:port of a plaintext port serving only grpc.health.v1 (for kubelet's gRPC "
              "probes when the server speaks TLS); empty: none")
      .Bool("tls.required", false,
            "refuse to serve gRPC or call another service or the payment processor in plaintext "
            "(production)")
      .String("metrics.listen", "0.0.0.0:9090", "host:port of the Prometheus /metrics endpoint")
      .OneOf("log.level", "info", {"debug", "info", "warn", "error"}, "lowest level logged")
      .String("log.file", "", "file to append JSON log lines to; empty means stderr")
      .Duration("shutdown.grace", absl::Seconds(10), absl::ZeroDuration(), absl::Minutes(5),
                "how long in-flight calls may finish after SIGTERM")
      .String("ports_file", "", "if set, the bound ports are written there as JSON");
}

ServerOptions ServerOptionsFromConfig(const std::string& service_name, const Config& config) {
  ServerOptions options;
  options.service_name = service_name;
  options.grpc_listen = config.GetString("grpc.listen");
  options.max_message_bytes = static_cast<int>(config.GetInt("grpc.max_message_bytes"));
  options.idle_threads = static_cast<int>(config.GetInt("grpc.idle_threads"));
  options.max_threads = static_cast<int>(config.GetInt("grpc.max_threads"));
  options.reflection = config.GetBool("grpc.reflection");
  options.max_connection_age = config.GetDuration("grpc.max_connection_age");
  options.max_connection_age_grace = config.GetDuration("grpc.max_connection_age_grace");
  options.metrics_listen = config.GetString("metrics.listen");
  options.shutdown_grace = config.GetDuration("shutdown.grace");
  options.ports_file = config.GetString("ports_file");
  options.tls = TlsFiles{config.GetString("grpc.tls.cert_file"),
                         config.GetString("grpc.tls.key_file"),
                         config.GetString("grpc.tls.client_ca_file"), ""};
  options.tls_required = config.GetBool("tls.required");
  options.health_listen = config.GetString("grpc.health_listen");
  return options;
}

void InitLogging(const std::string& service_name, const Config& config) {
  log::Options options;
  options.service = service_name;
  log::ParseLevel(config.GetString("log.level"), &options.level);
  options.file = config.GetString("log.file");
  log::Init(options);
}

GrpcServer::GrpcServer(ServerOptions options) : options_(std::move(options)) {}

void GrpcServer::AddPort(const std::string& name, int port) { other_ports_[name] = port; }

GrpcServer::~GrpcServer() { Shutdown(); }

void GrpcServer::AddService(grpc::Service* service) { services_.push_back(service); }

absl::Status GrpcServer::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  // Registered for every server of the process (linking it registers it too);
  // a server without reflection drops the plugin.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentialsFor(options_.tls, options_.tls_required);
  if (!credentials.ok()) return credentials.status();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_listen, *credentials, &grpc_port_);
  // Without this, Linux lets a second process bind the same port and share the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options_.max_connection_age)));
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options_.max_connection_age_grace)));
  if (!options_.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  grpc::ResourceQuota quota(absl::StrCat(options_.service_name, "-threads"));
  quota.SetMaxThreads(options_.max_threads);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS,
                              std::min(2, options_.idle_threads));
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              options_.idle_threads);
  for (grpc::Service* service : services_) builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(metrics_.NewRpcInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen for gRPC on ", options_.grpc_listen));
  }
  if (!options_.health_listen.empty()) {
    grpc::ServerBuilder health;
    health.AddListeningPort(options_.health_listen, grpc::InsecureServerCredentials(), &health_port_);
    health.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health.SetOption(std::make_unique<WithoutReflection>());
    // Answers every other method UNIMPLEMENTED; without a service of its own
    // gRPC would not poll the health service.
    health.RegisterCallbackGenericService(&health_only_);
    health_server_ = health.BuildAndStart();
    if (health_server_ == nullptr || health_port_ == 0) {
      server_->Shutdown();
      server_.reset();
      health_server_.reset();
      return absl::UnavailableError(
          absl::StrCat("cannot listen for health checks on ", options_.health_listen));
    }
    other_ports_["health"] = health_port_;
  }
  // Readiness is the overall status (""); liveness only says the process
  // answers, so a Kafka outage makes a pod unready, not restarted.
  SetHealth("", false);
  SetHealth(kLivenessService, true);

  if (absl::Status status = metrics_.Serve(options_.metrics_listen); !status.ok()) {
    server_->Shutdown();
    server_.reset();
    StopHealthServer();
    return status;
  }
  if (!options_.ports_file.empty()) {
    if (absl::Status status = WritePortsFile(options_.ports_file, grpc_port_, metrics_.port(),
                                               other_ports_);
        !status.ok()) {
      return status;
    }
  }
  log::Info("listening", {{"grpc_port", grpc_port_},
                          {"tls", options_.tls.cert_file.empty()
                                      ? "no"
                                      : (options_.tls.ca_file.empty() ? "server" : "mutual")},
                          {"metrics_port", metrics_.port()},
                          {"health_port", health_port_}});
  return absl::OkStatus();
}

void GrpcServer::StopHealthServer() {
  if (health_server_ == nullptr) return;
  health_server_->Shutdown(std::chrono::system_clock::now());
  health_server_->Wait();
  health_server_.reset();
}

void GrpcServer::SetHealth(const std::string& service, bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(service, serving);
  if (health_server_ != nullptr) {
    health_server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }
}

void GrpcServer::SetServing(bool serving) {
  if (server_ == nullptr || shut_down_.load()) return;
  SetHealth("", serving);
  metrics_.SetServing(serving);
  if (serving_.exchange(serving) != serving) log::Info(serving ? "serving" : "not serving");
}

void GrpcServer::ServeWhen(std::function<bool()> ready) {
  readiness_ = std::thread([this, ready = std::move(ready)] {
    while (!shut_down_.load()) {
      if (!dead_ && alive_ && !alive_()) {
        dead_ = true;
        log::Error("not alive: needs a restart");
        SetHealth(kLivenessService, false);
      }
      SetServing(!dead_ && ready());
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
}

void GrpcServer::Shutdown() {
  bool first = !shut_down_.exchange(true);
  if (readiness_.joinable()) readiness_.join();
  if (!first || server_ == nullptr) return;
  log::Info("shutting down", {{"grace_ms", absl::ToInt64Milliseconds(options_.shutdown_grace)}});
  server_->GetHealthCheckService()->Shutdown();
  if (health_server_ != nullptr) health_server_->GetHealthCheckService()->Shutdown();
  metrics_.SetServing(false);
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.shutdown_grace));
  server_->Wait();
  // Probes see NOT_SERVING through the drain; open health Watch calls end now.
  StopHealthServer();
  log::Info("stopped");
}

ShutdownSignal::ShutdownSignal() {
  if (shutdown_pipe[0] == -1 && pipe(shutdown_pipe) != 0) {
    log::Error("cannot create the shutdown pipe", {{"errno", errno}});
    std::abort();
  }
  struct sigaction action = {};
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

ShutdownSignal::~ShutdownSignal() {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
}

void ShutdownSignal::Wait() {
  while (!WaitFor(absl::Hours(1))) {
  }
}

bool ShutdownSignal::WaitFor(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!shutdown_requested.load()) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    struct pollfd fd = {shutdown_pipe[0], POLLIN, 0};
    poll(&fd, 1, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60000)));
  }
  return true;
}

void ShutdownSignal::Request() { OnShutdownSignal(0); }

}  // namespace helpline::server
