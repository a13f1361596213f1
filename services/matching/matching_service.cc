#include "services/matching/matching_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/matching/domain/presence_domain.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/server/log.h"

namespace helpline::matching {

absl::Status SendPresenceCommand(es::CommandSender& commands, v1::MatchingCommand command,
                                 const std::string& expert_id, int64_t sequence,
                                 absl::Duration timeout) {
  const std::string aggregate_id = PresenceId(expert_id);
  runtime::v1::CommandMeta& meta = *command.mutable_meta();
  meta.set_aggregate_id(aggregate_id);
  // One command per change Redis counted: a resend is the same command.
  meta.set_command_id(ids::DerivedCommandId(aggregate_id, absl::StrCat("presence/", sequence)));
  meta.mutable_actor()->set_system("matching.presence");
  absl::StatusOr<runtime::v1::Reply> reply = commands.Send(command, absl::Now() + timeout);
  if (!reply.ok()) return reply.status();
  return errors::FromReply(*reply);
}

MatchingService::MatchingService(MatchingOptions options, PresenceStore& presence,
                                 es::CommandSender& commands, auth::CallGuard& guard)
    : options_(options), presence_(presence), commands_(commands), guard_(guard) {}

grpc::Status MatchingService::Heartbeat(grpc::ServerContext* context,
                                        const v1::HeartbeatRequest* request,
                                        v1::HeartbeatResponse* response) {
  return guard_.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (!caller.HasRole("expert")) {
      return absl::PermissionDeniedError("only experts with an approved profile go online");
    }
    const v1::PresenceStatus status = request->status();
    if (status != v1::PRESENCE_STATUS_AVAILABLE && status != v1::PRESENCE_STATUS_BUSY &&
        status != v1::PRESENCE_STATUS_AWAY) {
      return errors::InvalidField(
          "status", "must be PRESENCE_STATUS_AVAILABLE, PRESENCE_STATUS_BUSY or PRESENCE_STATUS_AWAY");
    }
    // Presence lives on Redis's clock (the key's TTL), not the service clock.
    absl::Time now = absl::Now();
    absl::StatusOr<int64_t> changed = presence_.Heartbeat(caller.user_id, status, now);
    if (!changed.ok()) {
      log::Warn("presence unavailable", {{"error", changed.status().ToString()}});
      return absl::UnavailableError("presence is unavailable right now; send the heartbeat again");
    }
    if (*changed > 0) {
      v1::MatchingCommand record;
      record.mutable_record_presence()->set_status(status);
      record.mutable_record_presence()->set_sequence(*changed);
      absl::Status sent = SendPresenceCommand(commands_, record, caller.user_id, *changed,
                                              options_.command_timeout);
      if (!sent.ok()) {
        // Forget the change in Redis too, so the next heartbeat makes it again.
        presence_.Forget(caller.user_id).IgnoreError();
        return absl::UnavailableError(absl::StrCat(
            "the presence change could not be recorded; send the heartbeat again (", sent.message(),
            ")"));
      }
    }
    *response->mutable_next_heartbeat_in() = ToProtoDuration(options_.heartbeat_interval);
    *response->mutable_online_until() = ToProtoTime(now + presence_.ttl());
    return absl::OkStatus();
  });
}

}  // namespace helpline::matching
