#include "services/runtime/server/loop.h"

namespace helpline::server {

absl::Status Loop::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError(name_ + " runs already");
  thread_ = std::thread([this] {
    do {
      step_();
    } while (!stopping_.WaitForNotificationWithTimeout(interval_));
  });
  return absl::OkStatus();
}

void Loop::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace helpline::server
