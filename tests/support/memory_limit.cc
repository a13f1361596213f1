#include "tests/support/memory_limit.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {
namespace {

constexpr char kV1Root[] = "/sys/fs/cgroup/memory";
constexpr char kV2Root[] = "/sys/fs/cgroup";

bool Write(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  file.flush();
  return file.good();
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

}  // namespace

MemoryLimit::MemoryLimit(pid_t pid, int64_t limit_bytes) : pid_(pid) {
  const std::string name = UniqueName("helpline-test");
  // cgroup v1's memory controller, else v2's (a hierarchy with memory.max).
  v2_ = !Exists(kV1Root) && Exists(absl::StrCat(kV2Root, "/cgroup.controllers"));
  root_ = v2_ ? kV2Root : kV1Root;
  dir_ = absl::StrCat(root_, "/", name);
  if (mkdir(dir_.c_str(), 0755) != 0) {
    status_ = absl::FailedPreconditionError(absl::StrCat(
        "cannot create the memory cgroup ", dir_, " (needs a memory cgroup controller, as root)"));
    dir_.clear();
    return;
  }
  const std::string limit = std::to_string(limit_bytes);
  bool limited;
  if (v2_) {
    limited = Write(dir_ + "/memory.max", limit);
    if (Exists(dir_ + "/memory.swap.max")) limited = Write(dir_ + "/memory.swap.max", "0") && limited;
  } else {
    // What the process holds already counts too, and swap is no way out.
    Write(dir_ + "/memory.move_charge_at_immigrate", "3");
    limited = Write(dir_ + "/memory.limit_in_bytes", limit);
    if (Exists(dir_ + "/memory.memsw.limit_in_bytes")) {
      limited = Write(dir_ + "/memory.memsw.limit_in_bytes", limit) && limited;
    }
    Write(dir_ + "/memory.swappiness", "0");
  }
  if (!limited || !Write(dir_ + "/cgroup.procs", std::to_string(pid))) {
    status_ = absl::FailedPreconditionError(absl::StrCat("cannot limit process ", pid, " in ", dir_));
  }
}

MemoryLimit::~MemoryLimit() {
  if (dir_.empty()) return;
  if (kill(pid_, 0) == 0) Write(absl::StrCat(root_, "/cgroup.procs"), std::to_string(pid_));
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

int64_t MemoryLimit::OomKills() const {
  return v2_ ? ReadNumber("memory.events", "oom_kill") : ReadNumber("memory.oom_control", "oom_kill");
}

int64_t MemoryLimit::PeakBytes() const {
  return v2_ ? ReadNumber("memory.peak") : ReadNumber("memory.max_usage_in_bytes");
}

bool Running(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z' &&
         text[paren + 2] != 'X';
}

}  // namespace helpline::testing
