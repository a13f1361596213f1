#include "tests/support/service_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {

ServiceProcess::ServiceProcess(std::string binary, std::string name, nlohmann::json config,
                               std::string dir)
    : binary_(std::move(binary)), name_(std::move(name)), dir_(std::move(dir)),
      config_(std::move(config)) {
  std::system(absl::StrCat("mkdir -p '", dir_, "'").c_str());
  config_["grpc"]["listen"] = "127.0.0.1:0";
  config_["metrics"]["listen"] = "127.0.0.1:0";
  config_["ports_file"] = absl::StrCat(dir_, "/", name_, ".ports.json");
  // A config that says "kafka": null is for a binary that is not on Kafka;
  // one without a Kafka reaches the test run's as its admin.
  if (!config_.contains("kafka") || !config_["kafka"].is_null()) {
    if (!config_["kafka"].contains("bootstrap_servers")) {
      nlohmann::json kafka = KafkaConfigJson(TestKafka());
      if (config_["kafka"].is_object()) kafka.merge_patch(config_["kafka"]);
      config_["kafka"] = kafka;
    }
  } else {
    config_.erase("kafka");
  }
  config_["log"]["file"] = absl::StrCat(dir_, "/", name_, ".log");
}

ServiceProcess::~ServiceProcess() {
  if (process_ != nullptr && process_->running()) process_->Signal(SIGKILL);
}

::testing::AssertionResult ServiceProcess::Start() {
  const std::string ports_file = config_["ports_file"].get<std::string>();
  std::remove(ports_file.c_str());
  if (port_ != 0) {
    config_["grpc"]["listen"] = absl::StrCat("127.0.0.1:", port_);
    config_["metrics"]["listen"] = absl::StrCat("127.0.0.1:", metrics_port_);
  }
  const std::string config_file = absl::StrCat(dir_, "/", name_, ".json");
  {
    std::ofstream out(config_file);
    out << config_.dump(2);
  }
  process_ = std::make_unique<ChildProcess>(binary_, std::vector<std::string>{"--config", config_file},
                                            absl::StrCat(dir_, "/", name_, ".out"));
  if (!process_->Start()) return ::testing::AssertionFailure() << "cannot start " << binary_;
  port_ = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (absl::Now() < deadline && port_ == 0 && process_->running()) {
    std::ifstream ports(ports_file);
    nlohmann::json parsed = nlohmann::json::parse(ports, nullptr, false);
    if (parsed.is_object()) {
      port_ = parsed.value("grpc_port", 0);
      metrics_port_ = parsed.value("metrics_port", 0);
    }
    if (port_ == 0) absl::SleepFor(absl::Milliseconds(50));
  }
  while (absl::Now() < deadline && port_ != 0 && process_->running() &&
         HealthStatus(port_).value_or("") != "SERVING") {
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (port_ == 0 || HealthStatus(port_).value_or("") != "SERVING") {
    return ::testing::AssertionFailure() << name_ << " did not start serving: " << Output();
  }
  return ::testing::AssertionSuccess();
}

bool ServiceProcess::Stop() {
  if (process_ == nullptr || !process_->running()) return false;
  int status = process_->Signal(SIGTERM);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void ServiceProcess::Kill() {
  if (process_ != nullptr && process_->running()) process_->Signal(SIGKILL);
}

void ServiceProcess::Pause() {
  if (process_ != nullptr) process_->Send(SIGSTOP);
}

void ServiceProcess::Resume() {
  if (process_ != nullptr) process_->Send(SIGCONT);
}

std::string ServiceProcess::Output() const {
  std::string output = process_ == nullptr ? "" : process_->Output();
  std::ifstream log(config_["log"]["file"].get<std::string>());
  std::string line;
  std::string tail;
  while (std::getline(log, line)) {
    tail += line + "\n";
    if (tail.size() > 20000) tail.erase(0, tail.size() - 10000);
  }
  return absl::StrCat(output, "\n--- log ---\n", tail);
}

}  // namespace helpline::testing
