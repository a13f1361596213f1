#pragma once

#include <string>

#include "absl/time/time.h"
#include "helpline/matching/v1/commands.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "services/matching/domain/read_model.h"
#include "services/matching/matching_metrics.h"
#include "services/matching/presence.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/eventsourcing/closed_accounts.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/server/stream_slots.h"
#include "services/runtime/server/watch_hub.h"
#include "services/runtime/privacy/personal_text.h"

namespace helpline::matching {

struct MatchingOptions {
  // The deployment's currency (ISO 4217): budgets must be in it.
  std::string currency = "EUR";
  absl::Duration heartbeat_interval = absl::Seconds(10);
  absl::Duration command_timeout = absl::Seconds(10);
  // Open help requests a person may have at once.
  int open_requests_per_person = 3;
  // A help request nobody accepted expires after this (service time).
  absl::Duration request_wait_limit = absl::Minutes(10);
  // How far ahead a slot must start, and how far ahead it may.
  absl::Duration booking_minimum_notice = absl::Hours(2);
  absl::Duration booking_horizon = absl::Hours(24 * 90);
  // Bookings one person may hold with one expert that have not ended yet.
  int open_bookings_per_person_per_expert = 3;
  // A person's cancellation later than this before the start is late.
  absl::Duration free_cancellation_before = absl::Hours(12);
  // A watch stream ends after this (the client reconnects and resumes).
  absl::Duration watch_lifetime = absl::Minutes(10);
  // Watch streams open at once, per caller and on this server.
  int watch_streams_per_caller = 5;
  int watch_streams = 20000;
};

struct MatchingParts {
  Presence& presence;
  es::Front& front;
  MatchingReadModel& read_model;
  // Woken by the read model's changes (MatchingReadModel::OnChange).
  server::WatchHub& watches;
  auth::CallGuard& guard;
  const Clock& clock;
  // Accounts identity deleted: nobody books a deleted expert's time while
  // catalog is still unpublishing them.
  es::ClosedAccounts& closed_accounts;
  // Seals descriptions and notes with their author's key; opens them per answer.
  privacy::PersonalText& personal;
  MatchingMetrics* metrics = nullptr;  // none if null
};

// The MatchingService API: presence to Redis (status changes become
// commands to the expert's presence aggregate), help requests and their
// offers, booked slots. Queries come from the read model; every write waits
// until the read model has it, so the caller reads its own write. The watch
// streams hold no thread (gRPC's callback API, woken through the hub).
class MatchingService final
    : public v1::MatchingService::WithCallbackMethod_WatchRequest<
          v1::MatchingService::WithCallbackMethod_WatchOffers<v1::MatchingService::Service>> {
 public:
  MatchingService(MatchingOptions options, MatchingParts parts);

  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status RequestHelp(grpc::ServerContext* context, const v1::RequestHelpRequest* request,
                           v1::RequestHelpResponse* response) override;
  grpc::Status GetRequest(grpc::ServerContext* context, const v1::GetRequestRequest* request,
                          v1::GetRequestResponse* response) override;
  grpc::Status CancelRequest(grpc::ServerContext* context, const v1::CancelRequestRequest* request,
                             v1::CancelRequestResponse* response) override;
  // Sends the request whenever it (or its place in line) changes, until it
  // is matched, cancelled or expired.
  grpc::ServerWriteReactor<v1::WatchRequestResponse>* WatchRequest(
      grpc::CallbackServerContext* context, const v1::WatchRequestRequest* request) override;
  // Sends the expert's open offer (or none) now and whenever it changes.
  grpc::ServerWriteReactor<v1::WatchOffersResponse>* WatchOffers(
      grpc::CallbackServerContext* context, const v1::WatchOffersRequest* request) override;
  grpc::Status AcceptOffer(grpc::ServerContext* context, const v1::AcceptOfferRequest* request,
                           v1::AcceptOfferResponse* response) override;
  grpc::Status DeclineOffer(grpc::ServerContext* context, const v1::DeclineOfferRequest* request,
                            v1::DeclineOfferResponse* response) override;
  grpc::Status BookSlot(grpc::ServerContext* context, const v1::BookSlotRequest* request,
                        v1::BookSlotResponse* response) override;
  grpc::Status CancelBooking(grpc::ServerContext* context, const v1::CancelBookingRequest* request,
                             v1::CancelBookingResponse* response) override;
  grpc::Status GetBooking(grpc::ServerContext* context, const v1::GetBookingRequest* request,
                          v1::GetBookingResponse* response) override;
  grpc::Status ListMyBookings(grpc::ServerContext* context,
                              const v1::ListMyBookingsRequest* request,
                              v1::ListMyBookingsResponse* response) override;

 private:
  // The request into `out` if the caller may see it (its person or an admin).
  absl::Status ReadRequest(const std::string& help_request_id, const auth::Principal& caller,
                           v1::HelpRequest* out) const;
  // PERMISSION_DENIED unless the caller is the request's person or an admin.
  static absl::Status MayRead(const v1::HelpRequest& request, const auth::Principal& caller);
  // The booking into `out` if the caller is its person or expert (or an admin).
  absl::Status ReadBooking(const std::string& booking_id, const auth::Principal& caller,
                           v1::Booking* out) const;
  // The offer's request, if `caller` is the expert it went to.
  absl::StatusOr<std::string> OfferedRequest(const std::string& offer_id,
                                             const auth::Principal& caller) const;
  void CheckBudget(const v1::Budget& budget, const std::string& field,
                   errors::Validator& validator) const;
  // When a watch stream of `caller` ends at the latest: its lifetime or the
  // token's expiry.
  // Until when a call waits to seal or open what people typed.
  absl::Time Deadline() const;
  static absl::Time WatchOpenDeadline();
  absl::Time WatchEnd(const auth::Principal& caller) const;

  const MatchingOptions options_;
  MatchingParts parts_;
  server::StreamSlots watch_slots_;
};

// Sends a presence change (a heartbeat's or the sweep's) to the expert's
// presence aggregate and waits for the processor's answer.
absl::Status SendPresenceCommand(es::Writer& front, v1::MatchingCommand command,
                                 const std::string& expert_id, int64_t sequence);

}  // namespace helpline::matching
