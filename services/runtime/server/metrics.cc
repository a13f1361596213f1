#include "services/runtime/server/metrics.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace helpline::server {
namespace {

// Seconds; covers a cached read (~100 us) up to a command that waits for its
// Kafka transaction under load.
const prometheus::Histogram::BucketBoundaries kRpcBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), started_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->RecordRpc(method_, methods->GetSendStatus().error_code(), absl::Now() - started_);
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  std::string method_;
  absl::Time started_;
};

class RpcMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcMetricsInterceptor(metrics_, info->method() ? info->method() : "unknown");
  }

 private:
  Metrics* metrics_;
};

}  // namespace

std::string_view StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      rpcs_handled_(prometheus::BuildCounter()
                        .Name("grpc_server_handled_total")
                        .Help("RPCs completed, by method and status code")
                        .Register(*registry_)),
      rpc_seconds_(prometheus::BuildHistogram()
                       .Name("grpc_server_handling_seconds")
                       .Help("Time from receiving an RPC to sending its status")
                       .Register(*registry_)),
      serving_(prometheus::BuildGauge()
                   .Name("helpline_server_serving")
                   .Help("1 while the service answers its health check SERVING (ready: Kafka "
                         "reachable, partitions rebuilt, read models caught up), else 0")
                   .Register(*registry_)
                   .Add({})) {}

absl::Status Metrics::Serve(const std::string& listen_address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen_address, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", listen_address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  return absl::OkStatus();
}

int Metrics::port() const {
  if (exposer_ == nullptr) return 0;
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Metrics::RecordRpc(std::string_view method, grpc::StatusCode code, absl::Duration latency) {
  prometheus::Labels labels = {{"grpc_method", std::string(method)},
                               {"grpc_code", std::string(StatusCodeName(code))}};
  rpcs_handled_.Add(labels).Increment();
  rpc_seconds_.Add({{"grpc_method", std::string(method)}}, kRpcBuckets)
      .Observe(absl::ToDoubleSeconds(latency));
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::NewRpcInterceptorFactory() {
  return std::make_unique<RpcMetricsInterceptorFactory>(this);
}

}  // namespace helpline::server
