#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/identity/v1/events.pb.h"
#include "services/runtime/eventsourcing/projection.h"

namespace helpline::identity {

// What the identity front answers queries from: accounts by id and by email
// claim, with their sealed PII, roles and live sessions. A deleted account is
// forgotten.
class IdentityReadModel : public es::TypedProjection<v1::IdentityEvent> {
 public:
  struct UserView {
    std::string user_id;
    v1::SealedText email;
    v1::SealedText display_name;
    v1::SealedText password_hash;
    v1::AccountType account_type = v1::ACCOUNT_TYPE_UNSPECIFIED;
    std::vector<std::string> roles;
    absl::Time created_at;
    std::string email_claim_id;
    absl::flat_hash_set<std::string> live_sessions;  // refresh token family ids
  };

  void Apply(const v1::IdentityEvent& event) override;

  std::optional<UserView> FindUser(const std::string& user_id);
  std::optional<UserView> FindByEmailClaim(const std::string& claim_id);
  size_t users();

 private:
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, UserView> users_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, std::string> by_claim_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::identity
