#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace helpline::server {

// A service's Prometheus registry and its HTTP endpoint (`/metrics`, text
// format). Services add their own families to `registry()`; RPC counts and
// latencies by method and code are recorded for every call by the
// interceptor from `NewRpcInterceptorFactory`.
class Metrics {
 public:
  Metrics();

  prometheus::Registry& registry() { return *registry_; }

  // Starts serving on "host:port" (port 0 picks a free one).
  absl::Status Serve(const std::string& listen_address);
  int port() const;

  void RecordRpc(std::string_view method, grpc::StatusCode code, absl::Duration latency);
  // helpline_server_serving: 1 while the health check answers SERVING.
  void SetServing(bool serving) { serving_.Set(serving ? 1 : 0); }

  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewRpcInterceptorFactory();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>& rpcs_handled_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Gauge& serving_;
};

// "OK", "INVALID_ARGUMENT", ... as in the gRPC spec.
std::string_view StatusCodeName(grpc::StatusCode code);

}  // namespace helpline::server
