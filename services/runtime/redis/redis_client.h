#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/runtime/server/config.h"

struct redisContext;

namespace helpline::redis {

// One reply, as RESP2 has them. An error reply (WRONGTYPE ...) is a reply,
// not a failed call: the command reached Redis.
struct Reply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string text;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
};

// Every call's time and failures, by command (the first of a pipeline's,
// "PIPELINE" for several): helpline_redis_call_seconds{command} and
// helpline_redis_call_errors_total{command,kind}, kind "unavailable" (no
// answer: the call failed) or "error_reply" (Redis answered an error).
class CallMetrics {
 public:
  explicit CallMetrics(prometheus::Registry& registry);
  void Record(const std::vector<std::vector<std::string>>& commands, absl::Duration took,
              const absl::StatusOr<std::vector<Reply>>& replies);

 private:
  prometheus::Family<prometheus::Histogram>& seconds_;
  prometheus::Family<prometheus::Counter>& errors_;
};

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // AUTH when set
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration command_timeout = absl::Seconds(1);
  CallMetrics* metrics = nullptr;  // none if null
};

void AddRedisKeys(server::ConfigSchema& schema);
ClientOptions ClientOptionsFromConfig(const server::Config& config);

// A connection to one Redis endpoint (hiredis 0.14: no TLS, Sentinel or
// Cluster; production points it at a managed or Sentinel-fronted address).
// Thread-safe: calls are serialised on one connection. A call that finds the
// connection broken reconnects first; a call that breaks it returns
// UNAVAILABLE and is not retried here, because the command may or may not
// have run (SET NX, INCR ...) - the caller knows whether a retry is safe.
class Client {
 public:
  // `breaks`: a counter shared by a pool's clients; a break of any of them
  // makes the others reconnect before their next call (a Redis that went
  // away has broken them all, and their first call would fail otherwise).
  explicit Client(ClientOptions options, std::atomic<int64_t>* breaks = nullptr);
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  absl::StatusOr<Reply> Command(const std::vector<std::string>& args);
  // Sends all commands in one write and reads the replies in order.
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<std::vector<std::string>>& commands);
  // OK when Redis answered PONG.
  absl::Status Ping();

 private:
  absl::StatusOr<std::vector<Reply>> Send(const std::vector<std::vector<std::string>>& commands);
  absl::Status EnsureConnected() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status Broken(const char* during) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const ClientOptions options_;
  std::atomic<int64_t>* const breaks_;
  absl::Mutex mutex_;
  redisContext* context_ ABSL_GUARDED_BY(mutex_) = nullptr;
  int64_t breaks_at_connect_ ABSL_GUARDED_BY(mutex_) = 0;
};

// A few connections to the same endpoint, handed out in turn, so that
// calls from many threads are in flight together (a Client serialises its
// calls on its one connection).
class ClientPool {
 public:
  ClientPool(const ClientOptions& options, int connections);
  Client& Next();

 private:
  std::atomic<int64_t> breaks_{0};
  std::vector<std::unique_ptr<Client>> clients_;
  std::atomic<size_t> next_{0};
};

}  // namespace helpline::redis
