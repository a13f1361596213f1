#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

// Ways a test looks at a running server from outside, as a client would.
namespace helpline::testing {

std::shared_ptr<grpc::Channel> LocalChannel(int port);

// grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... or the call's error.
absl::StatusOr<std::string> HealthStatus(int port, const std::string& service = "");

// Service names that server reflection reports, asked with `buf curl`.
absl::StatusOr<std::vector<std::string>> ReflectedServices(int port);

// The body of GET http://127.0.0.1:<port><path>.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

}  // namespace helpline::testing
