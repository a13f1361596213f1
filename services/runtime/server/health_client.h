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

}  // namespace helpline::server
