#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "helpline/payments/v1/payments.pb.h"
#include "helpline/sessions/v1/sessions.pb.h"
#include "tools/client/client.h"

// The journey of docs/architecture.md §1 as a frontend would walk it, against running
// services: seeds what it needs (categories, approved experts online, a
// sponsor with a funded program), then a paid session billed per minute, a
// review, a sponsored session, a refund under the guarantee and a payout.
// `say` narrates each step; the report holds what a user would check. The
// demo prints it; the end-to-end test asserts it.
namespace helpline::demo {

// A headless participant in a LiveKit room (tools/media/livekit_participant.py)
// for as long as it lives.
class RoomParticipant {
 public:
  RoomParticipant(const std::string& python, const std::string& script,
                  const sessions::v1::JoinSessionResponse& joined);
  ~RoomParticipant();
  absl::Status AwaitConnected(absl::Duration timeout) const;
  // Whether LiveKit put it out (the room was deleted) within `timeout`.
  bool AwaitDisconnected(absl::Duration timeout) const;

 private:
  std::string Output() const;
  bool AwaitOutput(const std::string& text, absl::Duration timeout) const;

  pid_t pid_ = -1;
  std::string output_file_;
};

struct JourneyOptions {
  std::string admin_email;
  std::string admin_password;
  // The services' clock rate (the local stack's demo time runs at 60).
  double clock_rate = 1;
  // The earnings' refund window as payments is configured (service time).
  absl::Duration refund_window = absl::Hours(72);
  // Makes this run's people new accounts ("anna.<tag>@demo.helpline.local").
  std::string run_tag;
  // Where sessions bill from LiveKit's own events, the people join the room
  // for real: a Python with the livekit package, and
  // tools/media/livekit_participant.py.
  std::string participant_python;
  std::string participant_script;
};

struct JourneyReport {
  std::string category_id;
  std::string expert_id;  // Ben
  // Anna's paid session.
  std::string paid_session_id;
  int32_t first_position = 0;  // in the waiting line
  int32_t billed_minutes = 0;
  int64_t billed_minor = 0;
  int64_t fee_minor = 0;
  int64_t expert_share_minor = 0;
  int64_t person_spent_minor = 0;
  // What Anna's JoinSession answered: the room token LiveKit checks.
  sessions::v1::JoinSessionResponse anna_join;
  // The review.
  int64_t reviews_before = 0;
  int64_t reviews_after = 0;
  double stars_after = 0;
  // Cleo's sponsored session.
  std::string sponsored_session_id;
  int64_t sponsored_billed_minor = 0;
  int64_t sponsor_spent_before_minor = 0;
  int64_t sponsor_spent_after_minor = 0;
  int64_t sponsored_person_spent_minor = 0;
  // Dan's refunded session.
  std::string refunded_session_id;
  int64_t refunded_minor = 0;
  int64_t refunded_share_minor = 0;  // taken back from Ben's earnings
  // Ben's payout.
  int64_t payout_minor = 0;
  payments::v1::GetBalanceResponse expert_balance;  // after the payout
  payments::v1::ReconcileResponse reconcile;
  // Each person's, the sponsor's and Ben's balance at the end.
  std::vector<std::pair<std::string, payments::v1::GetBalanceResponse>> balances;
};

class Journey {
 public:
  using Say = std::function<void(const std::string&)>;
  Journey(client::Client& client, JourneyOptions options, Say say);
  // Stops the experts' heartbeats.
  ~Journey();

  // Categories, experts (approved, published, online while the journey
  // lives) and the sponsor's funded program; what exists is reused.
  absl::Status Seed();
  absl::StatusOr<JourneyReport> Run();

 private:
  struct Expert {
    client::User user;
    std::string name;
  };

  absl::StatusOr<client::User> Account(const std::string& email, const std::string& name,
                                       identity::v1::AccountType type);
  absl::Status SeedExpert(const std::string& name, const std::string& category,
                          const std::vector<std::string>& languages, int64_t rate);
  absl::Status SeedSponsor();
  // Asks for help now as `person` and has Ben accept; the match id.
  absl::StatusOr<std::string> MatchWithBen(client::User& person, const std::string& program,
                                           JourneyReport* report);
  // Both join, `minutes` of service time pass, Ben ends; the session.
  absl::StatusOr<sessions::v1::Session> Call(client::User& person, const std::string& session,
                                             double minutes);
  absl::StatusOr<payments::v1::GetBalanceResponse> Balance(client::User& user);
  // Polls `user`'s balance until `done` holds (up to a minute).
  absl::StatusOr<payments::v1::GetBalanceResponse> BalanceWhen(
      client::User& user, const std::function<bool(const payments::v1::GetBalanceResponse&)>& done);
  absl::StatusOr<client::User> Person(const std::string& name);
  // The heartbeat thread refreshes the experts' tokens too.
  absl::StatusOr<std::string> TokenOf(client::User& user);
  absl::Duration Real(absl::Duration service_time) const;
  std::string Money(int64_t minor) const;

  client::Client& client_;
  JourneyOptions options_;
  Say say_;
  client::User admin_;
  std::vector<Expert> experts_;
  client::User sponsor_;
  std::string program_id_;
  // The person's last JoinSession answer.
  sessions::v1::JoinSessionResponse person_join_;
  absl::Mutex tokens_;
  std::atomic<bool> stopping_{false};
  std::thread heartbeats_;
};

}  // namespace helpline::demo
