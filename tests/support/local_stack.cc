#include "tests/support/local_stack.h"

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {

LocalStack::LocalStack()
    : dir_(absl::StrCat(HELPLINE_TEST_STACK_DIR, "-", UniqueName("own"))),
      kafka_port_(PickFreePort()),
      controller_port_(PickFreePort()) {}

LocalStack::~LocalStack() {
  Stop();
  // A failed test's broker side goes with it: its log is deleted next.
  if (::testing::Test::HasFailure()) std::cerr << BrokerWarnings(60) << std::flush;
  std::system(absl::StrCat("rm -rf '", dir_, "'").c_str());
}

bool LocalStack::Run(const std::string& action) {
  // No Prometheus: these tests restart the broker, nothing scrapes or alerts.
  std::string command = absl::StrCat(
      "HL_STACK_DIR='", dir_, "' HL_KAFKA_PORT=", kafka_port_,
      " HL_KAFKA_CONTROLLER_PORT=", controller_port_, " HL_REDIS_PORT=0 HL_PROMETHEUS=no '",
      SourcePath("deploy/local/stack"), "' ", action, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return false;
  last_output_.clear();
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) last_output_.append(buffer, n);
  return pclose(pipe) == 0;
}

bool LocalStack::Start() { return Run("start"); }
bool LocalStack::Stop() { return Run("stop"); }

std::string LocalStack::BrokerWarnings(size_t max_lines) const {
  std::deque<std::string> kept;
  for (const std::string name : {"server.log.1", "server.log"}) {
    std::ifstream log(absl::StrCat(dir_, "/kafka/", name));
    for (std::string line; std::getline(log, line);) {
      if (!absl::StrContains(line, "] WARN ") && !absl::StrContains(line, "] ERROR ")) continue;
      kept.push_back(line.substr(0, 600));
      if (kept.size() > max_lines) kept.pop_front();
    }
  }
  std::string text = absl::StrCat("--- the broker's last ", kept.size(), " warnings and errors ---\n");
  for (const std::string& line : kept) absl::StrAppend(&text, line, "\n");
  return text;
}

kafka::ClientConfig LocalStack::Kafka() const { return StackKafka(dir_, "admin"); }

}  // namespace helpline::testing
