#include "services/identity/admin_bootstrap.h"

#include <optional>

#include "services/identity/domain/validation.h"
#include "services/runtime/server/log.h"

namespace helpline::identity {

AdminBootstrap::AdminBootstrap(IdentityService& service, std::string email, std::string password)
    : service_(service), email_(std::move(email)), password_(std::move(password)) {}

absl::Status AdminBootstrap::Start() {
  if (email_.empty()) return absl::OkStatus();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void AdminBootstrap::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (thread_.joinable()) thread_.join();
}

void AdminBootstrap::Run() {
  std::optional<std::string> email = NormaliseEmail(email_);
  if (!email) {
    log::Error("admin.email is not an email address; no admin bootstrapped");
    return;
  }
  for (;;) {
    absl::Status done = service_.BootstrapAdmin(*email, password_);
    if (done.ok()) {
      log::Info("admin account ready");
      return;
    }
    const bool passing = done.code() == absl::StatusCode::kUnavailable ||
                         done.code() == absl::StatusCode::kResourceExhausted ||
                         done.code() == absl::StatusCode::kDeadlineExceeded ||
                         done.code() == absl::StatusCode::kAborted;
    if (!passing) {
      log::Error("admin bootstrap refused", {{"error", done.ToString()}});
      return;
    }
    log::Warn("admin bootstrap failed; retrying in 5 s", {{"error", done.ToString()}});
    if (stopping_.WaitForNotificationWithTimeout(absl::Seconds(5))) return;
  }
}

}  // namespace helpline::identity
