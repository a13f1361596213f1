#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/server/loop.h"

namespace helpline::payments {

// The scheduled payout batch: once per interval of service time, every
// expert's available earnings are paid out. A batch is named after its
// interval, so a restart (or a second replica) inside the interval pays
// nobody twice: the ledger knows the batch's command already.
class PayoutScheduler {
 public:
  struct Options {
    std::string currency;
    absl::Duration interval = absl::Hours(24);
    int64_t minimum_minor = 1000;
    absl::Duration refund_window = absl::Hours(72);
  };

  PayoutScheduler(Options options, es::Front& front, const Clock& clock);

  absl::Status Start() { return loop_.Start(); }
  void Stop() { loop_.Stop(); }
  // Sends the batch of the interval `now` falls in, unless it went already.
  absl::Status RunDue(absl::Time now);

 private:
  const Options options_;
  es::Front& front_;
  const Clock& clock_;
  int64_t done_ = -1;  // the last interval whose batch went; the loop's thread only
  server::Loop loop_;
};

}  // namespace helpline::payments
