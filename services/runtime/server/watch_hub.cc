#include "services/runtime/server/watch_hub.h"

#include "absl/time/clock.h"

namespace helpline::server {

WatchHub::WatchHub() : thread_([this] { Run(); }) {}

WatchHub::~WatchHub() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  thread_.join();
}

void WatchHub::Changed(const std::vector<std::string>& keys) {
  absl::MutexLock lock(&mutex_);
  if (closed_) return;
  for (const std::string& key : keys) {
    if (by_key_.contains(key)) pending_.insert(key);
  }
}

void WatchHub::Close() {
  std::vector<Watcher*> all;
  {
    absl::MutexLock lock(&mutex_);
    closed_ = true;
    for (auto& [watcher, entry] : watchers_) all.push_back(watcher);
    Pin(all);
  }
  for (Watcher* watcher : all) {
    watcher->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "the server is stopping; watch again on another"));
  }
  absl::MutexLock lock(&mutex_);
  Unpin(all);
}

void WatchHub::Run() {
  absl::Time next_tick = absl::Now() + absl::Seconds(1);
  while (true) {
    std::vector<Watcher*> look, tick, expired;
    {
      absl::MutexLock lock(&mutex_);
      auto work = [this] { return stopping_ || !pending_.empty(); };
      mutex_.AwaitWithDeadline(absl::Condition(&work), next_tick);
      if (stopping_) return;
      absl::flat_hash_set<Watcher*> touched;
      for (const std::string& key : pending_) {
        auto watching = by_key_.find(key);
        if (watching == by_key_.end()) continue;
        touched.insert(watching->second.begin(), watching->second.end());
      }
      pending_.clear();
      look.assign(touched.begin(), touched.end());
      const absl::Time now = absl::Now();
      if (now >= next_tick) {
        next_tick = now + absl::Seconds(1);
        for (auto& [watcher, entry] : watchers_) {
          (entry.end <= now ? expired : tick).push_back(watcher);
        }
      }
      Pin(look);
      Pin(tick);
      Pin(expired);
    }
    for (Watcher* watcher : expired) watcher->End(grpc::Status::OK);
    for (Watcher* watcher : look) watcher->LookAgain();
    for (Watcher* watcher : tick) watcher->Tick();
    absl::MutexLock lock(&mutex_);
    Unpin(look);
    Unpin(tick);
    Unpin(expired);
  }
}

bool WatchHub::Add(Watcher* watcher, const std::vector<std::string>& keys, absl::Time end) {
  absl::MutexLock lock(&mutex_);
  if (closed_) return false;
  watchers_[watcher] = Entry{keys, end};
  Index(watcher, keys, true);
  return true;
}

void WatchHub::SetKeys(Watcher* watcher, const std::vector<std::string>& keys) {
  absl::MutexLock lock(&mutex_);
  auto found = watchers_.find(watcher);
  if (found == watchers_.end()) return;
  Index(watcher, found->second.keys, false);
  found->second.keys = keys;
  Index(watcher, keys, true);
}

void WatchHub::Remove(Watcher* watcher) {
  absl::MutexLock lock(&mutex_);
  auto idle = [this, watcher]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    auto found = watchers_.find(watcher);
    return found == watchers_.end() || found->second.busy == 0;
  };
  mutex_.Await(absl::Condition(&idle));
  auto found = watchers_.find(watcher);
  if (found == watchers_.end()) return;
  Index(watcher, found->second.keys, false);
  watchers_.erase(found);
}

int WatchHub::open() const {
  absl::MutexLock lock(&mutex_);
  return static_cast<int>(watchers_.size());
}

void WatchHub::Index(Watcher* watcher, const std::vector<std::string>& keys, bool add) {
  for (const std::string& key : keys) {
    if (add) {
      by_key_[key].insert(watcher);
      continue;
    }
    auto watching = by_key_.find(key);
    if (watching == by_key_.end()) continue;
    watching->second.erase(watcher);
    if (watching->second.empty()) by_key_.erase(watching);
  }
}

void WatchHub::Pin(const std::vector<Watcher*>& watchers) {
  for (Watcher* watcher : watchers) ++watchers_.at(watcher).busy;
}

void WatchHub::Unpin(const std::vector<Watcher*>& watchers) {
  for (Watcher* watcher : watchers) --watchers_.at(watcher).busy;
}

}  // namespace helpline::server
