#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/matching/v1/matching.pb.h"
#include "services/runtime/redis/redis_client.h"

namespace helpline::matching {

// What matching knows of who is online, and the offer reservations:
// PresenceStore in Redis, or a fake in unit tests (FakePresence).
class Presence {
 public:
  struct Change {
    std::string expert_id;
    // This change's sequence: what the presence aggregate orders by.
    int64_t sequence = 0;
  };

  virtual ~Presence() = default;

  // Records a heartbeat at `now`. Returns the change's sequence if the
  // expert's status changed (or the expert was offline), 0 otherwise.
  virtual absl::StatusOr<int64_t> Heartbeat(const std::string& expert_id,
                                            v1::PresenceStatus status, absl::Time now) = 0;
  // Experts whose heartbeat expired (last one before now - ttl), at most
  // `limit`; each is taken out of the online set, with a sequence.
  virtual absl::StatusOr<std::vector<Change>> Sweep(absl::Time now, int limit) = 0;
  // Drops the expert's key, so that the next heartbeat counts as a change
  // (used when a change could not be recorded).
  virtual absl::Status Forget(const std::string& expert_id) = 0;
  // Puts an expert taken out by Sweep back for the next sweep (used when
  // the offline change could not be recorded).
  virtual absl::Status Requeue(const std::string& expert_id, absl::Time now) = 0;
  // The status of an expert; OFFLINE when none.
  virtual absl::StatusOr<v1::PresenceStatus> Status(const std::string& expert_id) = 0;

  // Reserves an AVAILABLE expert for an offer for `window`, so the expert
  // is never offered two requests at once. False if the expert is not
  // available or holds another reservation.
  virtual absl::StatusOr<bool> Reserve(const std::string& expert_id, const std::string& offer_id,
                                       absl::Duration window) = 0;
  // Ends the reservation if it is still `offer_id`'s.
  virtual absl::Status Release(const std::string& expert_id, const std::string& offer_id) = 0;
  // Keeps `offer_id`'s reservation for `period` more (a match was made; the
  // expert app has not said "busy" yet).
  virtual absl::Status Keep(const std::string& expert_id, const std::string& offer_id,
                            absl::Duration period) = 0;
  // Whether the store answers.
  virtual absl::Status Check() = 0;

  virtual absl::Duration ttl() const = 0;
};

// Presence is soft state in Redis (docs/architecture.md §5): a key per
// expert with a TTL, a sorted set of online experts by last heartbeat, and a
// sequence per expert that orders the changes (Redis's time in
// microseconds, so it keeps growing across a Redis restart that lost
// everything). Each operation is one atomic script, one round trip.
class PresenceStore final : public Presence {
 public:
  PresenceStore(redis::ClientPool& redis, std::string key_prefix, absl::Duration ttl);

  absl::StatusOr<int64_t> Heartbeat(const std::string& expert_id, v1::PresenceStatus status,
                                    absl::Time now) override;
  absl::StatusOr<std::vector<Change>> Sweep(absl::Time now, int limit) override;
  absl::Status Forget(const std::string& expert_id) override;
  absl::Status Requeue(const std::string& expert_id, absl::Time now) override;
  absl::StatusOr<v1::PresenceStatus> Status(const std::string& expert_id) override;
  // SET NX PX in Redis.
  absl::StatusOr<bool> Reserve(const std::string& expert_id, const std::string& offer_id,
                               absl::Duration window) override;
  absl::Status Release(const std::string& expert_id, const std::string& offer_id) override;
  absl::Status Keep(const std::string& expert_id, const std::string& offer_id,
                    absl::Duration period) override;
  absl::Status Check() override;

  absl::Duration ttl() const override { return ttl_; }

 private:
  // EVALSHA, and EVAL (which loads the script) when Redis does not know it
  // yet (first use, or after a restart).
  absl::StatusOr<redis::Reply> RunScript(const std::string& script, const std::string& sha,
                                         const std::vector<std::string>& keys_and_args,
                                         int key_count);

  redis::ClientPool& redis_;
  const std::string heartbeat_sha_;
  const std::string sweep_sha_;
  const std::string reserve_sha_;
  const std::string release_sha_;
  const std::string keep_sha_;
  const std::string prefix_;
  const absl::Duration ttl_;
};

}  // namespace helpline::matching
