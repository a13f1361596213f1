#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

// Closed-loop load for the benchmark drivers: N clients call back to back.
namespace helpline::bench {

struct LoadFigures {
  double calls_per_sec = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int64_t failures = 0;

  nlohmann::json ToJson(const std::string& rate_name) const {
    return {{rate_name, calls_per_sec}, {"p50_ms", p50_ms}, {"p99_ms", p99_ms},
            {"failures", failures}};
  }
};

// `threads` clients, each running `call(thread)` (true: it succeeded) back
// to back for `duration`; the rate counts successes, latencies are theirs.
inline LoadFigures ClosedLoop(int threads, absl::Duration duration,
                              const std::function<bool(int)>& call) {
  std::mutex mutex;
  std::vector<double> latencies;
  std::atomic<int64_t> failures{0};
  absl::Time started = absl::Now();
  absl::Time end = started + duration;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      std::vector<double> own;
      while (absl::Now() < end) {
        absl::Time begin = absl::Now();
        bool ok = call(t);
        if (ok) {
          own.push_back(absl::ToDoubleMilliseconds(absl::Now() - begin));
        } else {
          ++failures;
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies.insert(latencies.end(), own.begin(), own.end());
    });
  }
  for (std::thread& client : clients) client.join();
  double elapsed = absl::ToDoubleSeconds(absl::Now() - started);
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    return latencies.empty()
               ? 0.0
               : latencies[std::min(latencies.size() - 1, static_cast<size_t>(q * latencies.size()))];
  };
  return {latencies.size() / elapsed, at(0.5), at(0.99), failures.load()};
}

}  // namespace helpline::bench
