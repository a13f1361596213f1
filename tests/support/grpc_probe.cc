#include "tests/support/grpc_probe.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/runtime/server/health_client.h"

namespace helpline::testing {

std::shared_ptr<grpc::Channel> LocalChannel(int port) {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
}

absl::StatusOr<std::string> HealthStatus(int port, const std::string& service) {
  return server::HealthStatus(absl::StrCat("127.0.0.1:", port), service);
}

absl::StatusOr<std::vector<std::string>> ReflectedServices(int port) {
  std::string command = absl::StrCat(HELPLINE_BUF_PROGRAM,
                                     " curl --protocol grpc --http2-prior-knowledge "
                                     "--list-services http://127.0.0.1:", port, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("cannot run buf");
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  int rc = pclose(pipe);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("buf curl failed: ", output));
  return std::vector<std::string>(absl::StrSplit(output, '\n', absl::SkipWhitespace()));
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  return server::HttpGet(port, path);
}

}  // namespace helpline::testing
