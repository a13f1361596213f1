#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "helpline/identity/v1/events.pb.h"
#include "services/runtime/eventsourcing/event_feed.h"

namespace helpline::es {

// The accounts identity deleted (its AccountDeleted events). An access token
// stays valid until it expires, so every service refuses a deleted account's
// calls itself, from the moment it has read the deletion.
class ClosedAccounts : public TypedProjection<identity::v1::IdentityEvent> {
 public:
  ClosedAccounts(kafka::SharedClients& kafka, const std::string& prefix, const std::string& service,
                 const std::string& deadletter_topic);

  absl::Status Start() { return feed_.Start(); }
  void Stop() { feed_.Stop(); }
  bool CaughtUp() { return feed_.CaughtUp(); }

  bool IsClosed(const std::string& user_id);
  void Apply(const identity::v1::IdentityEvent& event) override;

 private:
  absl::Mutex mutex_;
  absl::flat_hash_set<std::string> closed_ ABSL_GUARDED_BY(mutex_);
  EventFeed feed_;
};

}  // namespace helpline::es
