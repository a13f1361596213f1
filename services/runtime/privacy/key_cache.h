#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "services/runtime/eventsourcing/projection.h"
#include "services/runtime/privacy/pii_vault.h"

namespace helpline::privacy {

// The unwrapped data keys of a keys topic (helpline.<service>.keys), fed
// like a read model. A tombstone (empty value) erases a key.
class KeyCache : public es::Projection {
 public:
  explicit KeyCache(const PiiVault& vault) : vault_(vault) {}

  void Apply(const google::protobuf::Message& record, const es::EventSource& source) override;

  std::optional<std::string> Key(const std::string& key_id);
  // The topic holds the key but the configured key-encryption key does not
  // unwrap it (a wrong Secret): its texts cannot be opened, nor erased ones
  // told apart from them.
  bool Unusable(const std::string& key_id);
  bool HasUnusableKeyOf(const std::string& user_id);
  // Keys that unwrap, and keys that do not.
  std::pair<int64_t, int64_t> Counts();
  std::vector<std::string> KeyIdsOf(const std::string& user_id);

  struct Entry {
    std::string key_id;
    std::string key;
  };
  // The user's usable key with the smallest id (the oldest: key ids are
  // "<user id>/<UUIDv7>"), so that every replica seals with the same one.
  std::optional<Entry> AnyKeyOf(const std::string& user_id);
  // The users that have a key, usable or not.
  std::vector<std::string> Users();
  // A key this process has just stored, before the topic brings it back.
  void Remember(const std::string& key_id, const std::string& key);

 private:
  const PiiVault& vault_;
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::string> keys_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<std::string> unusable_ ABSL_GUARDED_BY(mutex_);
  // Every key id of each user, usable or not.
  absl::flat_hash_map<std::string, std::vector<std::string>> by_user_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::privacy
