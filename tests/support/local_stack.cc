#include "tests/support/local_stack.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {

LocalStack::LocalStack()
    : dir_(absl::StrCat(HELPLINE_TEST_STACK_DIR, "-", UniqueName("own"))),
      kafka_port_(PickFreePort()),
      controller_port_(PickFreePort()) {}

LocalStack::~LocalStack() {
  Stop();
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

kafka::ClientConfig LocalStack::Kafka() const { return StackKafka(dir_, "admin"); }

}  // namespace helpline::testing
