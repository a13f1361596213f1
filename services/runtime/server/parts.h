#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace helpline::server {

// What a service's main runs, as a list: each part named, started in the
// order added and stopped in the reverse order; the process is ready when
// every part that can tell says it is.
class Parts {
 public:
  struct Part {
    std::string name;
    std::function<absl::Status()> start;
    std::function<void()> stop;   // may be empty
    std::function<bool()> ready;  // may be empty: always ready once started
  };

  Parts() = default;
  Parts(const Parts&) = delete;
  Parts& operator=(const Parts&) = delete;
  ~Parts() { StopAll(); }

  Parts& Add(Part part) {
    parts_.push_back(std::move(part));
    return *this;
  }
  // A part with `absl::Status Start()` and `void Stop()`; ready as its
  // `InService()`, `CaughtUp()` or `Ready()` says, whichever it has first.
  template <class T>
  Parts& Add(std::string name, T& part) {
    Part added{std::move(name), [&part] { return part.Start(); }, [&part] { part.Stop(); }, {}};
    if constexpr (requires { part.InService(); }) {
      added.ready = [&part] { return part.InService(); };
    } else if constexpr (requires { part.CaughtUp(); }) {
      added.ready = [&part] { return part.CaughtUp(); };
    } else if constexpr (requires { part.Ready(); }) {
      added.ready = [&part] { return part.Ready(); };
    }
    return Add(std::move(added));
  }

  // Starts each part in turn. On the first failure: logs "cannot start:
  // <name>" with the error, stops what had started, and returns the error.
  absl::Status StartAll();
  // Stops the started parts, last first. Idempotent.
  void StopAll();
  bool Ready() const;
  // The names of the parts not started or not ready yet, in order.
  std::vector<std::string> NotReady() const;

 private:
  std::vector<Part> parts_;
  // Written by the main thread, read by the readiness thread.
  std::atomic<size_t> started_{0};
};

}  // namespace helpline::server
