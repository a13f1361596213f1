#include "services/runtime/eventsourcing/closed_accounts.h"

#include "helpline/identity/v1/events.pb.h"

namespace helpline::es {

ClosedAccounts::ClosedAccounts(kafka::SharedClients& kafka, const std::string& prefix,
                               const std::string& service, const std::string& deadletter_topic)
    : feed_(kafka, {prefix + "helpline.identity.events", deadletter_topic, service + ".closed-accounts"},
            [] { return std::make_unique<identity::v1::IdentityEvent>(); }, *this) {}

bool ClosedAccounts::IsClosed(const std::string& user_id) {
  absl::ReaderMutexLock lock(&mutex_);
  return closed_.contains(user_id);
}

void ClosedAccounts::Apply(const identity::v1::IdentityEvent& event) {
  if (!event.has_account_deleted()) return;
  absl::MutexLock lock(&mutex_);
  closed_.insert(event.meta().aggregate_id());
}

}  // namespace helpline::es
