#include "services/runtime/privacy/key_cache.h"

#include <algorithm>

#include "services/runtime/server/log.h"

namespace helpline::privacy {

void KeyCache::Apply(const google::protobuf::Message& message, const es::EventSource& source) {
  const std::string key_id(source.key);
  std::string user_id = PiiVault::UserOfKey(key_id);
  if (source.tombstone) {
    absl::MutexLock lock(&mutex_);
    keys_.erase(key_id);
    unusable_.erase(key_id);
    auto user = by_user_.find(user_id);
    if (user != by_user_.end()) {
      std::erase(user->second, key_id);
      if (user->second.empty()) by_user_.erase(user);
    }
    return;
  }
  absl::StatusOr<std::string> key =
      vault_.Unwrap(key_id, static_cast<const identity::v1::DataKeyRecord&>(message));
  if (!key.ok()) {
    log::Error("data key cannot be unwrapped", {{"key_id", key_id}, {"error", key.status().ToString()}});
    absl::MutexLock lock(&mutex_);
    if (unusable_.insert(key_id).second && !keys_.contains(key_id)) {
      by_user_[user_id].push_back(key_id);
    }
    return;
  }
  Remember(key_id, *key);
}

void KeyCache::Remember(const std::string& key_id, const std::string& key) {
  absl::MutexLock lock(&mutex_);
  const bool listed = keys_.contains(key_id) || unusable_.contains(key_id);
  unusable_.erase(key_id);
  keys_.insert_or_assign(key_id, key);
  if (!listed) by_user_[PiiVault::UserOfKey(key_id)].push_back(key_id);
}

bool KeyCache::Unusable(const std::string& key_id) {
  absl::MutexLock lock(&mutex_);
  return unusable_.contains(key_id);
}

bool KeyCache::HasUnusableKeyOf(const std::string& user_id) {
  absl::MutexLock lock(&mutex_);
  auto user = by_user_.find(user_id);
  if (user == by_user_.end()) return false;
  return std::any_of(user->second.begin(), user->second.end(),
                     [&](const std::string& key_id) { return unusable_.contains(key_id); });
}

std::pair<int64_t, int64_t> KeyCache::Counts() {
  absl::MutexLock lock(&mutex_);
  return {static_cast<int64_t>(keys_.size()), static_cast<int64_t>(unusable_.size())};
}

std::optional<KeyCache::Entry> KeyCache::AnyKeyOf(const std::string& user_id) {
  absl::MutexLock lock(&mutex_);
  auto user = by_user_.find(user_id);
  if (user == by_user_.end()) return std::nullopt;
  std::optional<Entry> oldest;
  for (const std::string& key_id : user->second) {
    auto key = keys_.find(key_id);
    if (key == keys_.end() || (oldest && oldest->key_id < key_id)) continue;
    oldest = Entry{key_id, key->second};
  }
  return oldest;
}

std::vector<std::string> KeyCache::Users() {
  absl::MutexLock lock(&mutex_);
  std::vector<std::string> users;
  users.reserve(by_user_.size());
  for (const auto& [user_id, unused] : by_user_) users.push_back(user_id);
  return users;
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

}  // namespace helpline::privacy
