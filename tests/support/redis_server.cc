#include "tests/support/redis_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/time/clock.h"
#include "services/runtime/redis/redis_client.h"

namespace helpline::testing {

RedisServerProcess::RedisServerProcess(int port) : port_(port) {}

RedisServerProcess::~RedisServerProcess() { Kill(); }

bool RedisServerProcess::Start() {
  pid_ = fork();
  if (pid_ == 0) {
    std::string port = std::to_string(port_);
    execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
           "--save", "", "--appendonly", "no", "--logfile", "/dev/null", nullptr);
    _exit(127);
  }
  redis::ClientOptions options;
  options.port = port_;
  redis::Client client(options);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (client.Ping().ok()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

void RedisServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace helpline::testing
