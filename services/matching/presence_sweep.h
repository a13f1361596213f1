#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/matching/presence.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/server/loop.h"

namespace helpline::matching {

// Experts whose heartbeats stopped go offline: every `interval`, the
// presence keys that expired are taken from Redis (each by one replica) and
// their offline change is recorded; one that cannot be is put back for the
// next sweep.
class PresenceSweep {
 public:
  PresenceSweep(Presence& presence, es::Writer& front, absl::Duration interval);

  absl::Status Start() { return loop_.Start(); }
  void Stop() { loop_.Stop(); }
  // One sweep; how many experts went offline.
  int RunOnce(absl::Time now);

 private:
  Presence& presence_;
  es::Writer& front_;
  server::Loop loop_;
};

}  // namespace helpline::matching
