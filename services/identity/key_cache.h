#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/identity/pii_vault.h"
#include "services/runtime/eventsourcing/event_feed.h"

namespace helpline::identity {

// The unwrapped data keys of helpline.identity.keys, fed like a read model.
// A tombstone (empty value) erases a key.
class KeyCache : public es::Projection {
 public:
  explicit KeyCache(const PiiVault& vault) : vault_(vault) {}

  void Apply(const google::protobuf::Message& record, const kafka::Record& source) override;

  std::optional<std::string> Key(const std::string& key_id);
  std::vector<std::string> KeyIdsOf(const std::string& user_id);

 private:
  const PiiVault& vault_;
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::string> keys_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, std::vector<std::string>> by_user_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::identity
