#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "services/matching/presence.h"

namespace helpline::matching::testing {

// Presence in memory, for unit tests: heartbeats, the offer reservations
// with their windows (against `now`), and a switch that makes every call
// fail as an unreachable Redis does.
class FakePresence final : public Presence {
 public:
  explicit FakePresence(absl::Duration ttl = absl::Seconds(30)) : ttl_(ttl) {}

  absl::Time now = absl::FromUnixSeconds(1'798'761'600);
  bool down = false;

  absl::StatusOr<int64_t> Heartbeat(const std::string& expert_id, v1::PresenceStatus status,
                                    absl::Time at) override {
    if (down) return Unreachable();
    Expert& expert = experts_[expert_id];
    const bool changed = expert.status != status;
    expert.status = status;
    expert.last_heartbeat = at;
    return changed ? ++sequence_ : 0;
  }
  absl::StatusOr<std::vector<Change>> Sweep(absl::Time at, int limit) override {
    if (down) return Unreachable();
    std::vector<Change> gone;
    for (auto it = experts_.begin(); it != experts_.end() && static_cast<int>(gone.size()) < limit;) {
      if (it->second.last_heartbeat < at - ttl_) {
        gone.push_back({it->first, ++sequence_});
        it = experts_.erase(it);
      } else {
        ++it;
      }
    }
    return gone;
  }
  absl::Status Forget(const std::string& expert_id) override {
    if (down) return Unreachable();
    experts_.erase(expert_id);
    return absl::OkStatus();
  }
  absl::Status Requeue(const std::string&, absl::Time) override {
    return down ? Unreachable() : absl::OkStatus();
  }
  absl::StatusOr<v1::PresenceStatus> Status(const std::string& expert_id) override {
    if (down) return Unreachable();
    auto found = experts_.find(expert_id);
    return found == experts_.end() ? v1::PRESENCE_STATUS_OFFLINE : found->second.status;
  }
  absl::StatusOr<bool> Reserve(const std::string& expert_id, const std::string& offer_id,
                               absl::Duration window) override {
    if (down) return Unreachable();
    auto found = experts_.find(expert_id);
    if (found == experts_.end() || found->second.status != v1::PRESENCE_STATUS_AVAILABLE) {
      return false;
    }
    auto held = reservations_.find(expert_id);
    if (held != reservations_.end() && held->second.second > now) return false;
    reservations_[expert_id] = {offer_id, now + window};
    return true;
  }
  absl::Status Release(const std::string& expert_id, const std::string& offer_id) override {
    if (down) return Unreachable();
    auto held = reservations_.find(expert_id);
    if (held != reservations_.end() && held->second.first == offer_id) reservations_.erase(held);
    return absl::OkStatus();
  }
  absl::Status Keep(const std::string& expert_id, const std::string& offer_id,
                    absl::Duration period) override {
    if (down) return Unreachable();
    auto held = reservations_.find(expert_id);
    if (held != reservations_.end() && held->second.first == offer_id) {
      held->second.second = now + period;
    }
    return absl::OkStatus();
  }
  absl::Status Check() override { return down ? Unreachable() : absl::OkStatus(); }
  absl::Duration ttl() const override { return ttl_; }

  // The offer holding `expert_id` now; empty if none.
  std::string ReservedFor(const std::string& expert_id) const {
    auto held = reservations_.find(expert_id);
    return held == reservations_.end() || held->second.second <= now ? "" : held->second.first;
  }

 private:
  struct Expert {
    v1::PresenceStatus status = v1::PRESENCE_STATUS_OFFLINE;
    absl::Time last_heartbeat;
  };
  static absl::Status Unreachable() { return absl::UnavailableError("presence store unreachable"); }

  const absl::Duration ttl_;
  std::map<std::string, Expert> experts_;
  std::map<std::string, std::pair<std::string, absl::Time>> reservations_;
  int64_t sequence_ = 0;
};

}  // namespace helpline::matching::testing
