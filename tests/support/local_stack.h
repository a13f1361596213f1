#pragma once

#include <string>

#include "services/runtime/kafka/client.h"

namespace helpline::testing {

// A Kafka (and Redis) of one test's own, started with deploy/local/stack, for
// tests that stop and restart the broker. Its ports stay the same across
// restarts.
class LocalStack {
 public:
  LocalStack();
  ~LocalStack();

  // Runs `deploy/local/stack start`; false (with the script's output in
  // last_output()) if it failed.
  bool Start();
  bool Stop();
  // As the admin principal.
  kafka::ClientConfig Kafka() const;
  const std::string& dir() const { return dir_; }
  const std::string& last_output() const { return last_output_; }
  // The broker log's last WARN and ERROR lines (printed when a test that
  // used this stack has failed).
  std::string BrokerWarnings(size_t max_lines) const;

 private:
  bool Run(const std::string& action);

  std::string dir_;
  int kafka_port_;
  int controller_port_;
  std::string last_output_;
};

}  // namespace helpline::testing
