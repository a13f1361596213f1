#pragma once

#include <string>
#include <vector>

#include "helpline/identity/v1/events.pb.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/privacy/key_cache.h"

namespace helpline::identity {

// AccountDeleted erases the account's data keys: a tombstone for each in
// helpline.identity.keys. Compaction then removes the keys themselves.
class KeyShredder : public es::Reaction {
 public:
  KeyShredder(privacy::KeyCache& keys, es::EventFeed& keys_feed, std::string keys_topic)
      : keys_(keys), keys_feed_(keys_feed), keys_topic_(std::move(keys_topic)) {}

  std::unique_ptr<google::protobuf::Message> NewEvent() const override {
    return std::make_unique<v1::IdentityEvent>();
  }
  std::vector<kafka::OutgoingRecord> Outputs(const google::protobuf::Message& event,
                                             const kafka::Record& source,
                                             const es::ReactionTarget& target) const override;

 private:
  privacy::KeyCache& keys_;
  es::EventFeed& keys_feed_;
  const std::string keys_topic_;
};

}  // namespace helpline::identity
