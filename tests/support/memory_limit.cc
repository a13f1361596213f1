#include "tests/support/memory_limit.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {
namespace {

constexpr char kMemoryRoot[] = "/sys/fs/cgroup/memory";

bool Write(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  file.flush();
  return file.good();
}

}  // namespace

MemoryLimit::MemoryLimit(pid_t pid, int64_t limit_bytes)
    : pid_(pid), dir_(absl::StrCat(kMemoryRoot, "/", UniqueName("helpline-test"))) {
  if (mkdir(dir_.c_str(), 0755) != 0) {
    status_ = absl::FailedPreconditionError(absl::StrCat(
        "cannot create the memory cgroup ", dir_, " (needs cgroup v1's memory controller, as root)"));
    dir_.clear();
    return;
  }
  if (!Write(dir_ + "/memory.limit_in_bytes", std::to_string(limit_bytes)) ||
      !Write(dir_ + "/cgroup.procs", std::to_string(pid))) {
    status_ = absl::FailedPreconditionError(absl::StrCat("cannot limit process ", pid, " in ", dir_));
  }
}

MemoryLimit::~MemoryLimit() {
  if (dir_.empty()) return;
  if (kill(pid_, 0) == 0) Write(absl::StrCat(kMemoryRoot, "/cgroup.procs"), std::to_string(pid_));
  for (int attempt = 0; attempt < 50 && rmdir(dir_.c_str()) != 0; ++attempt) usleep(100 * 1000);
}

int64_t MemoryLimit::ReadNumber(const std::string& file, const std::string& field) const {
  std::ifstream in(dir_ + "/" + file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first, second;
    words >> first >> second;
    int64_t value = 0;
    if (field.empty() && absl::SimpleAtoi(first, &value)) return value;
    if (!field.empty() && first == field && absl::SimpleAtoi(second, &value)) return value;
  }
  return -1;
}

int64_t MemoryLimit::OomKills() const { return ReadNumber("memory.oom_control", "oom_kill"); }

int64_t MemoryLimit::PeakBytes() const { return ReadNumber("memory.max_usage_in_bytes"); }

}  // namespace helpline::testing
