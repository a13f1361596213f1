#include "tests/support/grpc_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to port ", port));
  }
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  [[maybe_unused]] ssize_t sent = send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) response.append(buffer, n);
  close(fd);
  size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("not an HTTP response: ", response.substr(0, 80)));
  }
  if (response.find(" 200 ") > response.find("\r\n")) {
    return absl::NotFoundError(response.substr(0, response.find("\r\n")));
  }
  return response.substr(body + 4);
}

}  // namespace helpline::testing
