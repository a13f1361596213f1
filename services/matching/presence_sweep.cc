#include "services/matching/presence_sweep.h"

#include <vector>

#include "absl/time/clock.h"
#include "services/matching/matching_service.h"
#include "services/runtime/server/log.h"

namespace helpline::matching {

PresenceSweep::PresenceSweep(Presence& presence, es::Writer& front, absl::Duration interval)
    : presence_(presence),
      front_(front),
      loop_("presence sweep", interval, [this] { RunOnce(absl::Now()); }) {}

int PresenceSweep::RunOnce(absl::Time now) {
  absl::StatusOr<std::vector<Presence::Change>> gone = presence_.Sweep(now, 1000);
  if (!gone.ok()) {
    log::Warn("presence sweep failed", {{"error", gone.status().ToString()}});
    return 0;
  }
  int offline = 0;
  for (const Presence::Change& change : *gone) {
    v1::MatchingCommand command;
    command.mutable_mark_offline()->set_sequence(change.sequence);
    absl::Status sent = SendPresenceCommand(front_, command, change.expert_id, change.sequence);
    if (sent.ok()) {
      ++offline;
    } else {
      log::Warn("offline not recorded; the next sweep tries again",
                {{"expert_id", change.expert_id}, {"error", sent.ToString()}});
      presence_.Requeue(change.expert_id, now).IgnoreError();
    }
  }
  return offline;
}

}  // namespace helpline::matching
