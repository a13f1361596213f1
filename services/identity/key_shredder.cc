#include "services/identity/key_shredder.h"

#include "absl/time/clock.h"
#include "services/runtime/server/log.h"

namespace helpline::identity {

std::vector<kafka::OutgoingRecord> KeyShredder::Outputs(const google::protobuf::Message& message,
                                                        const kafka::Record&,
                                                        const es::ReactionTarget&) const {
  const auto& event = static_cast<const v1::IdentityEvent&>(message);
  if (!event.has_account_deleted()) return {};
  const std::string& user_id = event.meta().aggregate_id();
  // Keys are written before the account's first event: once the cache holds
  // everything in the topic now, it holds every key of this account.
  if (absl::Status current = keys_feed_.WaitUntilCurrent(absl::Now() + absl::Seconds(30));
      !current.ok()) {
    log::Warn("key cache not current; erasing the keys it knows", {{"error", current.ToString()}});
  }
  std::vector<kafka::OutgoingRecord> tombstones;
  for (const std::string& key_id : keys_.KeyIdsOf(user_id)) {
    kafka::OutgoingRecord tombstone;
    tombstone.topic = keys_topic_;
    tombstone.key = key_id;
    tombstone.tombstone = true;
    tombstones.push_back(std::move(tombstone));
  }
  log::Info("erasing the data keys of a deleted account",
            {{"user_id", user_id}, {"keys", tombstones.size()}});
  return tombstones;
}

}  // namespace helpline::identity
