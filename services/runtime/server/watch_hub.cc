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
  CallEach(all, [](Watcher* watcher) {
    watcher->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "the server is stopping; watch again on another"));
  });
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
          if (entry.end <= now) {
            expired.push_back(watcher);
          } else if (!entry.shown) {
            tick.push_back(watcher);
          }
        }
      }
      Pin(look);
      Pin(tick);
      Pin(expired);
    }
    CallEach(expired, [](Watcher* watcher) { watcher->End(grpc::Status::OK); });
    CallEach(look, [](Watcher* watcher) { watcher->LookAgain(); });
    CallEach(tick, [](Watcher* watcher) { watcher->Tick(); });
  }
}

void WatchHub::CallEach(const std::vector<Watcher*>& watchers, void (*call)(Watcher*)) {
  for (Watcher* watcher : watchers) {
    call(watcher);
    absl::MutexLock lock(&mutex_);
    --watchers_.at(watcher).busy;
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

void WatchHub::Shown(Watcher* watcher) {
  absl::MutexLock lock(&mutex_);
  auto found = watchers_.find(watcher);
  if (found != watchers_.end()) found->second.shown = true;
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


}  // namespace helpline::server
