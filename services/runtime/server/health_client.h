#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace helpline::server {

// Asks a server's grpc.health.v1 Check: "SERVING", "NOT_SERVING",
// "SERVICE_UNKNOWN", "UNKNOWN", or the call's error. (The health protos are
// compiled into gRPC but not shipped as headers, and reflection cannot
// describe them, so the request and answer are encoded here.)
absl::StatusOr<std::string> HealthStatus(const std::string& target, const std::string& service = "",
                                         absl::Duration timeout = absl::Seconds(5));

// The body of GET http://127.0.0.1:<port><path> (the metrics endpoint):
// UNAVAILABLE when nothing answers in `timeout`, NOT_FOUND for a status
// other than 200.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path,
                                    absl::Duration timeout = absl::Seconds(5));

}  // namespace helpline::server
