#include "services/identity/key_cache.h"

#include <algorithm>

#include "services/runtime/server/log.h"

namespace helpline::identity {

void KeyCache::Apply(const google::protobuf::Message& message, const kafka::Record& source) {
  const std::string& key_id = source.key;
  std::string user_id = PiiVault::UserOfKey(key_id);
  if (source.value.empty()) {
    absl::MutexLock lock(&mutex_);
    keys_.erase(key_id);
    auto user = by_user_.find(user_id);
    if (user != by_user_.end()) {
      std::erase(user->second, key_id);
      if (user->second.empty()) by_user_.erase(user);
    }
    return;
  }
  absl::StatusOr<std::string> key =
      vault_.Unwrap(key_id, static_cast<const v1::DataKeyRecord&>(message));
  if (!key.ok()) {
    log::Error("data key cannot be unwrapped", {{"key_id", key_id}, {"error", key.status().ToString()}});
    return;
  }
  absl::MutexLock lock(&mutex_);
  if (keys_.insert_or_assign(key_id, *std::move(key)).second) by_user_[user_id].push_back(key_id);
}

std::optional<std::string> KeyCache::Key(const std::string& key_id) {
  absl::MutexLock lock(&mutex_);
  auto found = keys_.find(key_id);
  if (found == keys_.end()) return std::nullopt;
  return found->second;
}

std::vector<std::string> KeyCache::KeyIdsOf(const std::string& user_id) {
  absl::MutexLock lock(&mutex_);
  auto found = by_user_.find(user_id);
  if (found == by_user_.end()) return {};
  return found->second;
}

}  // namespace helpline::identity
