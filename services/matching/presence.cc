#include "services/matching/presence.h"

#include <openssl/sha.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace helpline::matching {
namespace {

// A change's sequence: Redis's time in microseconds, above the expert's
// last one. It keeps growing when Redis loses its data (a restart), so the
// presence aggregate never takes a new change for a stale one.
#define HELPLINE_NEXT_SEQUENCE(key)                                   \
  "local now = redis.call('TIME')\n"                                  \
  "local sequence = tonumber(now[1]) * 1000000 + tonumber(now[2])\n"  \
  "local last = tonumber(redis.call('GET', " key ") or '0')\n"         \
  "if sequence <= last then sequence = last + 1 end\n"                 \
  "redis.call('SET', " key ", sequence)\n"

// KEYS: the expert's key, the online set, the expert's sequence.
// ARGV: status, ttl ms, now ms, expert id.
constexpr char kHeartbeatScript[] =
    "local previous = redis.call('GET', KEYS[1])\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])\n"
    "if previous == ARGV[1] then return 0 end\n"
    HELPLINE_NEXT_SEQUENCE("KEYS[3]")
    "return sequence\n";

// KEYS: the online set. ARGV: cutoff ms, key prefix, limit.
// Takes out only experts whose key has expired, so a heartbeat between the
// range read and the removal keeps its expert online.
constexpr char kSweepScript[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "local gone = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  if redis.call('EXISTS', ARGV[2] .. 'expert:' .. id) == 0 then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "    local key = ARGV[2] .. 'sequence:' .. id\n"
    HELPLINE_NEXT_SEQUENCE("key")
    "    table.insert(gone, id)\n"
    "    table.insert(gone, sequence)\n"
    "  end\n"
    "end\n"
    "return gone\n";

#undef HELPLINE_NEXT_SEQUENCE

// KEYS: the expert's key, the expert's reservation. ARGV: offer id, window ms.
constexpr char kReserveScript[] =
    "if redis.call('GET', KEYS[1]) ~= 'PRESENCE_STATUS_AVAILABLE' then return 0 end\n"
    "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
    "return 0\n";

// KEYS: the reservation. ARGV: offer id.
constexpr char kReleaseScript[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

// KEYS: the reservation. ARGV: offer id, period ms.
constexpr char kKeepScript[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

std::string Sha1Hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) absl::StrAppend(&hex, absl::Hex(byte, absl::kZeroPad2));
  return hex;
}

absl::Status Unexpected(const redis::Reply& reply) {
  return absl::InternalError(absl::StrCat("presence: unexpected Redis reply: ", reply.text));
}

}  // namespace

PresenceStore::PresenceStore(redis::ClientPool& redis, std::string key_prefix,
                             absl::Duration ttl)
    : redis_(redis),
      heartbeat_sha_(Sha1Hex(kHeartbeatScript)),
      sweep_sha_(Sha1Hex(kSweepScript)),
      reserve_sha_(Sha1Hex(kReserveScript)),
      release_sha_(Sha1Hex(kReleaseScript)),
      keep_sha_(Sha1Hex(kKeepScript)),
      prefix_(std::move(key_prefix)),
      ttl_(ttl) {}

absl::StatusOr<redis::Reply> PresenceStore::RunScript(
    const std::string& script, const std::string& sha,
    const std::vector<std::string>& keys_and_args, int key_count) {
  redis::Client& client = redis_.Next();
  std::vector<std::string> command = {"EVALSHA", sha, absl::StrCat(key_count)};
  command.insert(command.end(), keys_and_args.begin(), keys_and_args.end());
  absl::StatusOr<redis::Reply> reply = client.Command(command);
  if (reply.ok() && reply->is_error() && absl::StartsWith(reply->text, "NOSCRIPT")) {
    command[0] = "EVAL";
    command[1] = script;
    reply = client.Command(command);
  }
  return reply;
}

absl::StatusOr<int64_t> PresenceStore::Heartbeat(const std::string& expert_id,
                                                 v1::PresenceStatus status, absl::Time now) {
  absl::StatusOr<redis::Reply> reply = RunScript(
      kHeartbeatScript, heartbeat_sha_,
      {absl::StrCat(prefix_, "expert:", expert_id), absl::StrCat(prefix_, "online"),
       absl::StrCat(prefix_, "sequence:", expert_id), v1::PresenceStatus_Name(status),
       absl::StrCat(absl::ToInt64Milliseconds(ttl_)), absl::StrCat(absl::ToUnixMillis(now)),
       expert_id},
      3);
  if (!reply.ok()) return reply.status();
  if (reply->type != redis::Reply::Type::kInteger) return Unexpected(*reply);
  return reply->integer;
}

absl::StatusOr<std::vector<PresenceStore::Change>> PresenceStore::Sweep(absl::Time now,
                                                                        int limit) {
  absl::StatusOr<redis::Reply> reply =
      RunScript(kSweepScript, sweep_sha_,
                {absl::StrCat(prefix_, "online"), absl::StrCat(absl::ToUnixMillis(now - ttl_)),
                 prefix_, absl::StrCat(limit)},
                1);
  if (!reply.ok()) return reply.status();
  if (reply->type != redis::Reply::Type::kArray) return Unexpected(*reply);
  std::vector<Change> gone;
  for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
    gone.push_back({reply->elements[i].text, reply->elements[i + 1].integer});
  }
  return gone;
}

absl::Status PresenceStore::Forget(const std::string& expert_id) {
  return redis_.Next().Command({"DEL", absl::StrCat(prefix_, "expert:", expert_id)}).status();
}

absl::Status PresenceStore::Requeue(const std::string& expert_id, absl::Time now) {
  // Scored as expired already, and only if no heartbeat came back meanwhile.
  return redis_.Next()
      .Command({"ZADD", absl::StrCat(prefix_, "online"), "NX",
                absl::StrCat(absl::ToUnixMillis(now - ttl_) - 1), expert_id})
      .status();
}

absl::StatusOr<v1::PresenceStatus> PresenceStore::Status(const std::string& expert_id) {
  absl::StatusOr<redis::Reply> reply =
      redis_.Next().Command({"GET", absl::StrCat(prefix_, "expert:", expert_id)});
  if (!reply.ok()) return reply.status();
  v1::PresenceStatus status = v1::PRESENCE_STATUS_OFFLINE;
  if (!reply->is_nil() && !v1::PresenceStatus_Parse(reply->text, &status)) {
    return Unexpected(*reply);
  }
  return status;
}

absl::StatusOr<bool> PresenceStore::Reserve(const std::string& expert_id,
                                            const std::string& offer_id, absl::Duration window) {
  absl::StatusOr<redis::Reply> reply = RunScript(
      kReserveScript, reserve_sha_,
      {absl::StrCat(prefix_, "expert:", expert_id), absl::StrCat(prefix_, "offer:", expert_id),
       offer_id, absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(window)))},
      2);
  if (!reply.ok()) return reply.status();
  if (reply->type != redis::Reply::Type::kInteger) return Unexpected(*reply);
  return reply->integer == 1;
}

absl::Status PresenceStore::Release(const std::string& expert_id, const std::string& offer_id) {
  return RunScript(kReleaseScript, release_sha_,
                   {absl::StrCat(prefix_, "offer:", expert_id), offer_id}, 1)
      .status();
}

absl::Status PresenceStore::Keep(const std::string& expert_id, const std::string& offer_id,
                                 absl::Duration period) {
  return RunScript(kKeepScript, keep_sha_,
                   {absl::StrCat(prefix_, "offer:", expert_id), offer_id,
                    absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(period)))},
                   1)
      .status();
}

absl::Status PresenceStore::Check() { return redis_.Next().Ping(); }

}  // namespace helpline::matching
