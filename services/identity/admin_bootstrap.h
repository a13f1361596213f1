#pragma once

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "services/identity/identity_service.h"

namespace helpline::identity {

// The admin account of the configuration (admin.email, admin.password),
// made or given the admin role at start; retried every 5 s while identity
// cannot answer yet (Kafka, or the hashing queue full at start). Nothing
// when admin.email is empty.
class AdminBootstrap {
 public:
  AdminBootstrap(IdentityService& service, std::string email, std::string password);
  ~AdminBootstrap() { Stop(); }

  absl::Status Start();
  void Stop();

 private:
  void Run();

  IdentityService& service_;
  const std::string email_;
  const std::string password_;
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace helpline::identity
