#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace helpline::server {

// A background loop of a service (a sweep, a scheduler, a worker): `step`
// runs on the loop's own thread at Start and then every `interval` until
// Stop.
// Stop waits for a step under way to end.
class Loop {
 public:
  Loop(std::string name, absl::Duration interval, std::function<void()> step)
      : name_(std::move(name)), interval_(interval), step_(std::move(step)) {}
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop() { Stop(); }

  absl::Status Start();
  void Stop();
  // For a step: waits `timeout`, true if the loop is stopping meanwhile.
  bool StoppingWithin(absl::Duration timeout) {
    return stopping_.WaitForNotificationWithTimeout(timeout);
  }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  const absl::Duration interval_;
  const std::function<void()> step_;
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace helpline::server
