#pragma once

#include <string>
#include <vector>

#include "helpline/catalog/v1/events.pb.h"
#include "helpline/identity/v1/events.pb.h"
#include "services/runtime/privacy/key_cache.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/reactor.h"

// Identity reacting to events: its own, and catalog's.
namespace helpline::identity {

// UserRegistered confirms the email claim; AccountDeleted releases it.
std::vector<v1::IdentityCommand> ClaimFollowsAccount(const v1::IdentityEvent& event);

// Catalog's ExpertApproved (an expert's first approved profile) grants the
// user the role "expert".
std::vector<v1::IdentityCommand> ExpertGetsRole(const catalog::v1::CatalogEvent& event);

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
