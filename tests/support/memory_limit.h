#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace helpline::testing {

// A memory limit on one process, as a pod's limit is: a memory cgroup of the
// test's own (cgroup v1's memory controller, or v2's) that the process, all
// its threads and what it holds already are moved into, without swap. A
// process past it is killed by the kernel's OOM killer, which the cgroup
// counts.
class MemoryLimit {
 public:
  MemoryLimit(pid_t pid, int64_t limit_bytes);
  // Moves the process back out if it still runs, then removes the cgroup.
  ~MemoryLimit();

  MemoryLimit(const MemoryLimit&) = delete;
  MemoryLimit& operator=(const MemoryLimit&) = delete;

  // Why the limit could not be set (no writable memory cgroup here ...).
  const absl::Status& status() const { return status_; }
  // Processes of the cgroup the OOM killer killed (-1: this kernel does not say).
  int64_t OomKills() const;
  // The most memory the cgroup's processes used at once.
  int64_t PeakBytes() const;

 private:
  int64_t ReadNumber(const std::string& file, const std::string& field = "") const;

  pid_t pid_;
  bool v2_ = false;
  std::string root_;
  std::string dir_;
  absl::Status status_;
};

// The process exists and is not a zombie (a child killed but not yet reaped).
bool Running(pid_t pid);

}  // namespace helpline::testing
