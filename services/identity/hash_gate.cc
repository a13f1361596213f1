#include "services/identity/hash_gate.h"

#include "services/runtime/core/errors.h"

namespace helpline::identity {

HashGate::Slot HashGate::Acquire(absl::Time deadline) {
  absl::MutexLock lock(&mutex_);
  if (!mutex_.AwaitWithDeadline(absl::Condition(this, &HashGate::HasFree), deadline)) {
    return Slot(nullptr, errors::RetryLater("too many sign-ins at once: try again in a moment",
                                            absl::Seconds(1)));
  }
  --free_;
  return Slot(this, absl::OkStatus());
}

int HashGate::free() const {
  absl::MutexLock lock(&mutex_);
  return free_;
}

void HashGate::Release() {
  absl::MutexLock lock(&mutex_);
  ++free_;
}

}  // namespace helpline::identity
