#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "services/runtime/server/config.h"
#include "services/runtime/server/tls.h"
#include "services/runtime/server/metrics.h"

namespace helpline::server {

// The gRPC health service name that is SERVING for as long as the process
// answers (Kubernetes' liveness probe); "" is readiness (ServeWhen).
inline constexpr char kLivenessService[] = "helpline.liveness";


struct ServerOptions {
  std::string service_name;                  // "identity", ...
  std::string grpc_listen = "0.0.0.0:50051";  // port 0 picks a free one
  std::string metrics_listen = "0.0.0.0:9090";
  int max_message_bytes = 4 << 20;
  // Handler threads kept waiting for calls; more are made under load and
  // end again when idle above this number (thread churn costs CPU).
  int idle_threads = 16;
  // Handler threads at most; a call past them is RESOURCE_EXHAUSTED rather
  // than a thread more (each Watch stream holds one while it is open).
  int max_threads = 1000;
  // A client's connection is closed gracefully (GOAWAY) after about this
  // long, so that clients behind one address, the gateway first, spread
  // over replicas that joined since; calls open then may go on for the grace.
  absl::Duration max_connection_age = absl::Minutes(5);
  absl::Duration max_connection_age_grace = absl::Minutes(11);
  absl::Duration shutdown_grace = absl::Seconds(10);
  std::string ports_file;  // if set, {"grpc_port":..,"metrics_port":..} is written here
  // Server reflection (every API described to anyone who asks, for grpcurl
  // and buf curl): on for development, off in production.
  bool reflection = true;
  // TLS on grpc_listen when tls.cert_file is set; with tls.ca_file, only
  // clients with a certificate that CA signed are served (mutual TLS).
  TlsFiles tls;
  // Refuse to listen, or to call anyone, in plaintext (production).
  bool tls_required = false;
  // If set, a plaintext port serving grpc.health.v1 only (readiness "" and
  // helpline.liveness): kubelet's gRPC probes cannot speak TLS.
  std::string health_listen;
};

// Adds the keys ServerOptionsFromConfig reads (grpc.*, metrics.*, log.*,
// shutdown.grace, ports_file) to a service's schema.
void AddServerKeys(ConfigSchema& schema);
ServerOptions ServerOptionsFromConfig(const std::string& service_name, const Config& config);
// Starts the JSON log as the config's log.* keys say.
void InitLogging(const std::string& service_name, const Config& config);

// What every Helpline binary serves: its gRPC services plus grpc.health.v1
// and server reflection, RPC metrics, and a Prometheus endpoint. Health is
// NOT_SERVING until SetServing(true), and again from the start of Shutdown.
class GrpcServer {
 public:
  explicit GrpcServer(ServerOptions options);
  ~GrpcServer();

  // Before Start(). The service must outlive the server.
  void AddService(grpc::Service* service);

  // Before Start(): another port the process listens on (a webhook
  // endpoint), written to the ports file as "<name>_port".
  void AddPort(const std::string& name, int port);

  absl::Status Start();
  int grpc_port() const { return grpc_port_; }
  int health_port() const { return health_port_; }
  int metrics_port() const { return metrics_.port(); }
  Metrics& metrics() { return metrics_; }

  void SetServing(bool serving);
  // From now until Shutdown, health follows `ready` (asked every 100 ms):
  // e.g. the read model caught up and the processor rebuilt its partitions.
  void ServeWhen(std::function<bool()> ready);
  // Liveness too follows `alive` once ServeWhen runs: false for what only a
  // restart mends (a Kafka producer that hit a fatal error), so that
  // Kubernetes restarts the pod instead of leaving it serving without writes.
  // Call before ServeWhen.
  void AliveWhile(std::function<bool()> alive) { alive_ = std::move(alive); }
  // What the readiness health check says now.
  bool serving() const { return serving_.load(); }

  // Stops accepting calls, lets calls in flight finish for up to the grace
  // period, then cancels the rest. Idempotent.
  void Shutdown();

 private:
  ServerOptions options_;
  Metrics metrics_;
  std::vector<grpc::Service*> services_;
  std::map<std::string, int> other_ports_;
  // Sets a health status on the server and on its plaintext health port.
  void SetHealth(const std::string& service, bool serving);
  void StopHealthServer();

  std::unique_ptr<grpc::Server> server_;
  // Before health_server_, which uses it until it is destroyed.
  grpc::CallbackGenericService health_only_;
  std::unique_ptr<grpc::Server> health_server_;
  int grpc_port_ = 0;
  int health_port_ = 0;
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> serving_{false};
  std::thread readiness_;
  std::function<bool()> alive_;
  bool dead_ = false;  // on the readiness thread only
};

// Turns SIGTERM and SIGINT into a request to stop. Construct it in main()
// before starting threads; Wait() returns once a signal (or Request()) came.
class ShutdownSignal {
 public:
  ShutdownSignal();
  ~ShutdownSignal();
  void Wait();
  // Waits at most `timeout`; true if shutdown was requested.
  bool WaitFor(absl::Duration timeout);
  void Request();
};

}  // namespace helpline::server
