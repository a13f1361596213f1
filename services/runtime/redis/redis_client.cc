#include "services/runtime/redis/redis_client.h"

#include <algorithm>

#include <sys/time.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "hiredis/hiredis.h"

namespace helpline::redis {
namespace {

timeval ToTimeval(absl::Duration duration) { return absl::ToTimeval(duration); }

Reply Convert(const redisReply* raw) {
  Reply reply;
  switch (raw->type) {
    case REDIS_REPLY_STRING:
      reply.type = Reply::Type::kString;
      reply.text.assign(raw->str, raw->len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = Reply::Type::kStatus;
      reply.text.assign(raw->str, raw->len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = Reply::Type::kError;
      reply.text.assign(raw->str, raw->len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = Reply::Type::kInteger;
      reply.integer = raw->integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = Reply::Type::kArray;
      for (size_t i = 0; i < raw->elements; ++i) reply.elements.push_back(Convert(raw->element[i]));
      break;
    default:
      reply.type = Reply::Type::kNil;
  }
  return reply;
}

void Append(redisContext* context, const std::vector<std::string>& args) {
  std::vector<const char*> pointers;
  std::vector<size_t> lengths;
  for (const std::string& arg : args) {
    pointers.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  redisAppendCommandArgv(context, static_cast<int>(args.size()), pointers.data(), lengths.data());
}

}  // namespace

void AddRedisKeys(server::ConfigSchema& schema) {
  schema.String("redis.host", "127.0.0.1", "Redis host (a managed or Sentinel-fronted endpoint)")
      .Int("redis.port", 6379, 1, 65535, "Redis port")
      .Secret("redis.password", "Redis AUTH password (give it through the environment)")
      .Duration("redis.timeout", absl::Seconds(1), absl::Milliseconds(10), absl::Seconds(30),
                "connect and command timeout");
}

ClientOptions ClientOptionsFromConfig(const server::Config& config) {
  ClientOptions options;
  options.host = config.GetString("redis.host");
  options.port = static_cast<int>(config.GetInt("redis.port"));
  options.password = config.GetString("redis.password");
  options.connect_timeout = config.GetDuration("redis.timeout");
  options.command_timeout = config.GetDuration("redis.timeout");
  return options;
}

Client::Client(ClientOptions options, std::atomic<int64_t>* breaks)
    : options_(std::move(options)), breaks_(breaks) {}

ClientPool::ClientPool(const ClientOptions& options, int connections) {
  for (int i = 0; i < std::max(1, connections); ++i) {
    clients_.push_back(std::make_unique<Client>(options, &breaks_));
  }
}

Client& ClientPool::Next() { return *clients_[next_.fetch_add(1) % clients_.size()]; }

Client::~Client() {
  if (context_ != nullptr) redisFree(context_);
}

absl::Status Client::Broken(const char* during) {
  if (breaks_ != nullptr) breaks_->fetch_add(1);
  std::string why = context_ != nullptr && context_->err != 0 ? context_->errstr : "no reply";
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
  return absl::UnavailableError(absl::StrCat("redis ", options_.host, ":", options_.port, ": ",
                                             during, ": ", why));
}

absl::Status Client::EnsureConnected() {
  if (context_ != nullptr && breaks_ != nullptr && breaks_->load() > breaks_at_connect_) {
    redisFree(context_);
    context_ = nullptr;
  }
  if (context_ != nullptr) return absl::OkStatus();
  if (breaks_ != nullptr) breaks_at_connect_ = breaks_->load();
  timeval connect_timeout = absl::ToTimeval(options_.connect_timeout);
  context_ = redisConnectWithTimeout(options_.host.c_str(), options_.port, connect_timeout);
  if (context_ == nullptr || context_->err != 0) return Broken("connect");
  timeval command_timeout = absl::ToTimeval(options_.command_timeout);
  if (redisSetTimeout(context_, command_timeout) != REDIS_OK) return Broken("set timeout");
  if (!options_.password.empty()) {
    auto* raw = static_cast<redisReply*>(redisCommand(context_, "AUTH %s", options_.password.c_str()));
    if (raw == nullptr) return Broken("AUTH");
    Reply reply = Convert(raw);
    freeReplyObject(raw);
    if (reply.is_error()) {
      redisFree(context_);
      context_ = nullptr;
      return absl::UnauthenticatedError(absl::StrCat("redis AUTH: ", reply.text));
    }
  }
  return absl::OkStatus();
}

CallMetrics::CallMetrics(prometheus::Registry& registry)
    : seconds_(prometheus::BuildHistogram()
                   .Name("helpline_redis_call_seconds")
                   .Help("Time of a call to Redis (a command or a pipeline), connecting included")
                   .Register(registry)),
      errors_(prometheus::BuildCounter()
                  .Name("helpline_redis_call_errors_total")
                  .Help("Redis calls that failed (unavailable) or were answered with an error")
                  .Register(registry)) {}

void CallMetrics::Record(const std::vector<std::vector<std::string>>& commands, absl::Duration took,
                         const absl::StatusOr<std::vector<Reply>>& replies) {
  std::string command = "PIPELINE";
  if (commands.size() == 1 && !commands.front().empty()) {
    command = absl::AsciiStrToUpper(commands.front().front());
  }
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  seconds_.Add({{"command", command}}, kBuckets).Observe(absl::ToDoubleSeconds(took));
  if (!replies.ok()) {
    errors_.Add({{"command", command}, {"kind", "unavailable"}}).Increment();
    return;
  }
  for (const Reply& reply : *replies) {
    if (reply.is_error()) errors_.Add({{"command", command}, {"kind", "error_reply"}}).Increment();
  }
}

absl::StatusOr<Reply> Client::Command(const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<Reply>> replies = Pipeline({args});
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

absl::StatusOr<std::vector<Reply>> Client::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  const absl::Time started = absl::Now();
  absl::StatusOr<std::vector<Reply>> replies = Send(commands);
  if (options_.metrics != nullptr) options_.metrics->Record(commands, absl::Now() - started, replies);
  return replies;
}

absl::StatusOr<std::vector<Reply>> Client::Send(
    const std::vector<std::vector<std::string>>& commands) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status status = EnsureConnected(); !status.ok()) return status;
  for (const std::vector<std::string>& args : commands) Append(context_, args);
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return Broken("command");
    replies.push_back(Convert(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return replies;
}

absl::Status Client::Ping() {
  absl::StatusOr<Reply> reply = Command({"PING"});
  if (!reply.ok()) return reply.status();
  if (reply->type != Reply::Type::kStatus || reply->text != "PONG") {
    return absl::UnavailableError(absl::StrCat("redis PING answered '", reply->text, "'"));
  }
  return absl::OkStatus();
}

}  // namespace helpline::redis
