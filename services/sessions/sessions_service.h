#pragma once

#include <string>

#include "absl/time/time.h"
#include "helpline/sessions/v1/commands.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/sessions/domain/read_model.h"
#include "services/sessions/livekit_rooms.h"
#include "services/sessions/livekit_tokens.h"
#include "services/runtime/privacy/personal_text.h"

namespace helpline::sessions {

struct SessionsOptions {
  RoomTokenOptions room_tokens;
  std::string livekit_url = "ws://127.0.0.1:7880";
  absl::Duration review_window = absl::Hours(24 * 14);
  absl::Duration refund_window = absl::Hours(72);
  absl::Duration command_timeout = absl::Seconds(10);
};

struct SessionsParts {
  es::Front& front;
  SessionsReadModel& read_model;
  auth::CallGuard& guard;
  const Clock& clock;
  // Room tokens carry real time, whatever clock.rate says.
  const Clock& token_clock;
  // Seals review texts with their author's key; opens them per answer.
  privacy::PersonalText& personal;
  // Null where Helpline does not manage LiveKit's rooms.
  MediaRooms* rooms = nullptr;
};

// The SessionsService API. Join, leave and end carry the front's clock at
// the moment the call came; reads come from the read model after the write
// is in it.
class SessionsService final : public v1::SessionsService::Service {
 public:
  SessionsService(SessionsOptions options, SessionsParts parts);

  grpc::Status JoinSession(grpc::ServerContext* context, const v1::JoinSessionRequest* request,
                           v1::JoinSessionResponse* response) override;
  grpc::Status LeaveSession(grpc::ServerContext* context, const v1::LeaveSessionRequest* request,
                            v1::LeaveSessionResponse* response) override;
  grpc::Status EndSession(grpc::ServerContext* context, const v1::EndSessionRequest* request,
                          v1::EndSessionResponse* response) override;
  grpc::Status GetSession(grpc::ServerContext* context, const v1::GetSessionRequest* request,
                          v1::GetSessionResponse* response) override;
  grpc::Status ListMySessions(grpc::ServerContext* context,
                              const v1::ListMySessionsRequest* request,
                              v1::ListMySessionsResponse* response) override;
  grpc::Status SubmitReview(grpc::ServerContext* context, const v1::SubmitReviewRequest* request,
                            v1::SubmitReviewResponse* response) override;
  grpc::Status RequestRefund(grpc::ServerContext* context, const v1::RequestRefundRequest* request,
                             v1::RequestRefundResponse* response) override;

 private:
  // The session into `out` if the caller is a participant or an admin.
  absl::Status Read(const std::string& session_id, const auth::Principal& caller,
                    v1::Session* out) const;
  // Writes `command` for the session as the caller, then reads the session
  // back into `out`.
  absl::Status WriteThenRead(v1::SessionsCommand& command, const std::string& session_id,
                             const auth::Principal& caller, const std::string& command_id,
                             v1::Session* out);

  const SessionsOptions options_;
  SessionsParts parts_;
};

}  // namespace helpline::sessions
