#pragma once

#include <sys/types.h>

#include <string>

namespace helpline::testing {

// A redis-server of a test's own, for tests that stop and restart it.
class RedisServerProcess {
 public:
  explicit RedisServerProcess(int port);
  ~RedisServerProcess();

  // Starts redis-server on the port and waits until it answers PING.
  bool Start();
  // SIGKILL, then waits for the process to be gone.
  void Kill();
  int port() const { return port_; }

 private:
  int port_;
  pid_t pid_ = -1;
};

}  // namespace helpline::testing
