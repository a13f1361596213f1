#pragma once

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/child_process.h"

namespace helpline::testing {

// A Helpline service binary run by a test against the test run's Kafka: its
// config is `config` plus loopback gRPC and metrics ports picked at the
// first start (kept by later ones), the ports file and Kafka's address
// (unless `config` names one, or has "kafka": null); its log is
// `<dir>/<name>.log`.
class ServiceProcess {
 public:
  ServiceProcess(std::string binary, std::string name, nlohmann::json config, std::string dir);
  ~ServiceProcess();

  // Starts it and waits (up to 90 s) until its health check says SERVING.
  // A restart listens on the ports of the first start.
  ::testing::AssertionResult Start();
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  // SIGTERM; true if it shut down cleanly (exit status 0).
  bool Stop();
  // SIGKILL: a crash.
  void Kill();
  // SIGSTOP and SIGCONT: a process that hangs (a long GC pause, a VM frozen).
  void Pause();
  void Resume();
  std::string Output() const;
  // The running process's id (0 when not running).
  pid_t pid() const { return process_ != nullptr ? process_->pid() : 0; }

 private:
  const std::string binary_;
  const std::string name_;
  const std::string dir_;
  nlohmann::json config_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace helpline::testing
