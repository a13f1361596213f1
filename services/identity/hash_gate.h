#pragma once

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace helpline::identity {

// Bounds how many password hashes run at once (each takes ~19 MiB and tens
// of milliseconds of a core): a caller waits for a slot until its deadline,
// then gets RESOURCE_EXHAUSTED, so a flood of sign-ins queues briefly and is
// then refused instead of growing memory and threads without bound.
class HashGate {
 public:
  explicit HashGate(int slots) : free_(slots) {}

  // A slot, released when the Slot ends; check `status()` first.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : gate_(other.gate_), status_(std::move(other.status_)) {
      other.gate_ = nullptr;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (gate_ != nullptr) gate_->Release();
    }
    const absl::Status& status() const { return status_; }

   private:
    friend class HashGate;
    Slot(HashGate* gate, absl::Status status) : gate_(gate), status_(std::move(status)) {}
    HashGate* gate_;
    absl::Status status_;
  };

  Slot Acquire(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mutex_);
  int free() const ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  void Release() ABSL_LOCKS_EXCLUDED(mutex_);
  bool HasFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return free_ > 0; }

  mutable absl::Mutex mutex_;
  int free_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::identity
