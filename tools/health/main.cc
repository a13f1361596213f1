// helpline-health HOST:PORT [SERVICE]: prints the server's grpc.health.v1
// status; exits 0 when SERVING, 1 otherwise (for scripts that wait).
#include <iostream>

#include "services/runtime/server/health_client.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: helpline-health HOST:PORT [SERVICE]\n";
    return 2;
  }
  absl::StatusOr<std::string> status =
      helpline::server::HealthStatus(argv[1], argc == 3 ? argv[2] : "", absl::Seconds(2));
  if (!status.ok()) {
    std::cout << "UNREACHABLE: " << status.status().message() << "\n";
    return 1;
  }
  std::cout << *status << "\n";
  return *status == "SERVING" ? 0 : 1;
}
