#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/runtime/auth/key_set.h"
#include "services/runtime/auth/token_verifier.h"

namespace helpline::identity {

// The signing key set from its Secret file, read again when the file
// changes (Kubernetes updates mounted Secrets in place), so a rotation needs
// no restart. Also the public-key source of identity's own verifier.
class SigningKeys : public auth::PublicKeySource {
 public:
  // The file is looked at again at most every `check_interval`.
  static absl::StatusOr<std::unique_ptr<SigningKeys>> Load(std::string path,
                                                           absl::Duration check_interval);

  auth::Ed25519Key Active();
  std::vector<auth::Ed25519Key> Published();
  absl::StatusOr<std::vector<auth::Ed25519Key>> FetchKeys() override { return Published(); }

 private:
  SigningKeys(std::string path, absl::Duration check_interval)
      : path_(std::move(path)), check_interval_(check_interval) {}
  // Reads the file if it changed since the last look; a broken file keeps
  // the keys in use and is logged.
  void Refresh() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string path_;
  const absl::Duration check_interval_;
  absl::Mutex mutex_;
  std::unique_ptr<auth::SigningKeySet> keys_ ABSL_GUARDED_BY(mutex_);
  int64_t file_mtime_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Time last_look_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::identity
