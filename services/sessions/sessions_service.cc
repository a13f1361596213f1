#include "services/sessions/sessions_service.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/paging.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/core/text_checks.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/sessions/domain/sessions_domain.h"

namespace helpline::sessions {
namespace {

constexpr int kMaxText = 2000;

bool Participant(const v1::Session& session, const std::string& user_id) {
  return user_id == session.person_id() || user_id == session.expert_id();
}

}  // namespace

SessionsService::SessionsService(SessionsOptions options, SessionsParts parts)
    : options_(std::move(options)), parts_(parts) {}

absl::Status SessionsService::Read(const std::string& session_id, const auth::Principal& caller,
                                   v1::Session* out) const {
  if (session_id.empty()) return errors::InvalidField("session_id", "is required");
  std::optional<v1::Session> session =
      parts_.front.ReadOrCatchUp([&] { return parts_.read_model.Session(session_id); });
  if (!session) return absl::NotFoundError("no such session");
  if (!Participant(*session, caller.user_id) && !caller.HasRole("admin")) {
    return absl::PermissionDeniedError("only the session's person and expert can see it");
  }
  *out = *std::move(session);
  return parts_.personal.OpenAll(*out, absl::Now() + options_.command_timeout);
}

absl::Status SessionsService::WriteThenRead(v1::SessionsCommand& command,
                                            const std::string& session_id,
                                            const auth::Principal& caller,
                                            const std::string& command_id, v1::Session* out) {
  if (absl::Status written = parts_.front.Write(
          command, es::CommandOrigin::ByUser(session_id, command_id, caller.user_id));
      !written.ok()) {
    return written;
  }
  return Read(session_id, caller, out);
}

grpc::Status SessionsService::JoinSession(grpc::ServerContext* context,
                                          const v1::JoinSessionRequest* request,
                                          v1::JoinSessionResponse* response) {
  absl::Time arrived = parts_.clock.Now();
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    v1::Session& session = *response->mutable_session();
    if (absl::Status visible = Read(request->session_id(), caller, &session); !visible.ok()) {
      return visible;
    }
    if (SessionIsOver(session.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("the session is ", v1::SessionStatus_Name(session.status())));
    }
    // LiveKit creates no room by itself (room.auto_create: false), and
    // sessions deletes it when the session is over: a token kept after that
    // lets nobody in. Opened before the join is recorded, so nobody counts
    // as joined into a room the video server could not open.
    if (parts_.rooms != nullptr) {
      if (absl::Status created = parts_.rooms->CreateRoom(request->session_id()); !created.ok()) {
        return absl::UnavailableError(
            absl::StrCat("the video server cannot open the room: ", created.message()));
      }
    }
    bool participant = Participant(session, caller.user_id);
    if (participant) {
      v1::SessionsCommand command;
      *command.mutable_join_session()->mutable_at() = ToProtoTime(arrived);
      // Every join is its own command: a rejoin after leaving must count.
      if (absl::Status written = WriteThenRead(command, request->session_id(), caller, ids::NewUuidV7(),
                                       &session);
          !written.ok()) {
        // The session ended meanwhile: the room just opened closes again.
        std::optional<v1::Session> now = parts_.read_model.Session(request->session_id());
        if (parts_.rooms != nullptr && now && SessionIsOver(now->status())) {
          parts_.rooms->DeleteRoom(request->session_id()).IgnoreError();
        }
        return written;
      }
    }
    RoomToken token = IssueRoomToken(options_.room_tokens, caller.user_id, request->session_id(),
                                     participant, parts_.token_clock.Now());
    response->set_room_token(token.token);
    response->set_room_name(request->session_id());
    *response->mutable_token_expires_at() = ToProtoTime(token.expires_at);
    response->set_livekit_url(options_.livekit_url);
    return absl::OkStatus();
  });
}

grpc::Status SessionsService::LeaveSession(grpc::ServerContext* context,
                                           const v1::LeaveSessionRequest* request,
                                           v1::LeaveSessionResponse* response) {
  absl::Time arrived = parts_.clock.Now();
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (absl::Status visible = Read(request->session_id(), caller, response->mutable_session());
        !visible.ok()) {
      return visible;
    }
    v1::SessionsCommand command;
    *command.mutable_leave_session()->mutable_at() = ToProtoTime(arrived);
    return WriteThenRead(command, request->session_id(), caller, ids::NewUuidV7(),
                 response->mutable_session());
  });
}

grpc::Status SessionsService::EndSession(grpc::ServerContext* context,
                                         const v1::EndSessionRequest* request,
                                         v1::EndSessionResponse* response) {
  absl::Time arrived = parts_.clock.Now();
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (absl::Status visible = Read(request->session_id(), caller, response->mutable_session());
        !visible.ok()) {
      return visible;
    }
    v1::SessionsCommand command;
    *command.mutable_end_session()->mutable_at() = ToProtoTime(arrived);
    // One end per caller and session: a retry answers as the first did.
    return WriteThenRead(command, request->session_id(), caller,
                 ids::CommandId(caller.user_id, absl::StrCat("end:", request->session_id())),
                 response->mutable_session());
  });
}

grpc::Status SessionsService::GetSession(grpc::ServerContext* context,
                                         const v1::GetSessionRequest* request,
                                         v1::GetSessionResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    return Read(request->session_id(), caller, response->mutable_session());
  });
}

grpc::Status SessionsService::ListMySessions(grpc::ServerContext* context,
                                             const v1::ListMySessionsRequest* request,
                                             v1::ListMySessionsResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    absl::Status listed = paging::ListPage(
        request->page_size(), request->page_token(),
        [&](const std::optional<paging::TimeKey>& after, size_t limit) {
          return parts_.read_model.SessionsOf(caller.user_id, after, limit);
        },
        [](const v1::Session& session) {
          return paging::TimeKey{FromProtoTime(session.created_at()), session.session_id()};
        },
        [&](v1::Session&& session) { *response->add_sessions() = std::move(session); },
        response->mutable_next_page_token());
    if (!listed.ok()) return listed;
    return parts_.personal.OpenAll(*response, absl::Now() + options_.command_timeout);
  });
}

grpc::Status SessionsService::SubmitReview(grpc::ServerContext* context,
                                           const v1::SubmitReviewRequest* request,
                                           v1::SubmitReviewResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    validator.Check(!request->session_id().empty(), "session_id", "is required");
    validator.Check(request->stars() >= 1 && request->stars() <= 5, "stars", "must be 1 to 5");
    text::CheckText(request->text(), 0, kMaxText, "text", validator, true);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    if (absl::Status visible = Read(request->session_id(), caller, response->mutable_session());
        !visible.ok()) {
      return visible;
    }
    v1::SessionsCommand command;
    command.mutable_submit_review()->set_stars(request->stars());
    absl::StatusOr<std::string> text = parts_.personal.Seal(
        caller.user_id, request->text(), absl::Now() + options_.command_timeout);
    if (!text.ok()) return text.status();
    command.mutable_submit_review()->set_text(*std::move(text));
    *command.mutable_submit_review()->mutable_window() = ToProtoDuration(options_.review_window);
    return WriteThenRead(command, request->session_id(), caller,
                 ids::CommandId(caller.user_id, absl::StrCat("review:", request->session_id())),
                 response->mutable_session());
  });
}

grpc::Status SessionsService::RequestRefund(grpc::ServerContext* context,
                                            const v1::RequestRefundRequest* request,
                                            v1::RequestRefundResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    validator.Check(!request->session_id().empty(), "session_id", "is required");
    text::CheckText(request->reason(), 1, kMaxText, "reason", validator, true);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    if (absl::Status visible = Read(request->session_id(), caller, response->mutable_session());
        !visible.ok()) {
      return visible;
    }
    v1::SessionsCommand command;
    absl::StatusOr<std::string> reason = parts_.personal.Seal(
        caller.user_id, request->reason(), absl::Now() + options_.command_timeout);
    if (!reason.ok()) return reason.status();
    command.mutable_request_refund()->set_reason(*std::move(reason));
    *command.mutable_request_refund()->mutable_window() = ToProtoDuration(options_.refund_window);
    return WriteThenRead(command, request->session_id(), caller,
                 ids::CommandId(caller.user_id, absl::StrCat("refund:", request->session_id())),
                 response->mutable_session());
  });
}

}  // namespace helpline::sessions
