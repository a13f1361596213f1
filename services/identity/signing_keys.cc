#include "services/identity/signing_keys.h"

#include <sys/stat.h>

#include "absl/time/clock.h"
#include "services/runtime/server/log.h"

namespace helpline::identity {
namespace {

int64_t ModificationTime(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) return 0;
  return static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SigningKeys>> SigningKeys::Load(std::string path,
                                                                absl::Duration check_interval) {
  absl::StatusOr<auth::SigningKeySet> keys = auth::SigningKeySet::FromFile(path);
  if (!keys.ok()) return keys.status();
  std::unique_ptr<SigningKeys> loaded(new SigningKeys(std::move(path), check_interval));
  absl::MutexLock lock(&loaded->mutex_);
  loaded->keys_ = std::make_unique<auth::SigningKeySet>(*std::move(keys));
  loaded->file_mtime_ = ModificationTime(loaded->path_);
  loaded->last_look_ = absl::Now();
  return loaded;
}

void SigningKeys::Refresh() {
  absl::Time now = absl::Now();
  if (now - last_look_ < check_interval_) return;
  last_look_ = now;
  int64_t mtime = ModificationTime(path_);
  if (mtime == file_mtime_) return;
  absl::StatusOr<auth::SigningKeySet> keys = auth::SigningKeySet::FromFile(path_);
  if (!keys.ok()) {
    log::Error("signing keys file changed but cannot be used; keeping the keys in use",
               {{"file", path_}, {"error", keys.status().ToString()}});
    return;
  }
  keys_ = std::make_unique<auth::SigningKeySet>(*std::move(keys));
  file_mtime_ = mtime;
  log::Info("signing keys reloaded", {{"active_kid", keys_->active().kid}});
}

auth::Ed25519Key SigningKeys::Active() {
  absl::MutexLock lock(&mutex_);
  Refresh();
  return keys_->active();
}

std::vector<auth::Ed25519Key> SigningKeys::Published() {
  absl::MutexLock lock(&mutex_);
  Refresh();
  return keys_->PublicKeys();
}

}  // namespace helpline::identity
