#pragma once

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

// One JSON object per line on stderr (or a file), the shape log collectors
// expect: {"time":..., "level":..., "service":..., "msg":..., "trace_id":..., <fields>}.
namespace helpline::log {

enum class Level { kDebug, kInfo, kWarn, kError };

struct Options {
  std::string service;           // "identity", ...; every line carries it
  Level level = Level::kInfo;    // lines below it are dropped
  std::string file;              // empty: stderr
};

// Call once from main() before other threads start; also routes gRPC's own
// log lines into the same stream. Without it, lines go to stderr at info.
void Init(const Options& options);

// "debug" | "info" | "warn" | "error".
bool ParseLevel(std::string_view text, Level* level);

// `fields` must be a JSON object (or null); its members are added to the line.
void Write(Level level, std::string_view message, const nlohmann::json& fields = nullptr);
inline void Info(std::string_view m, const nlohmann::json& f = nullptr) { Write(Level::kInfo, m, f); }
inline void Warn(std::string_view m, const nlohmann::json& f = nullptr) { Write(Level::kWarn, m, f); }
inline void Error(std::string_view m, const nlohmann::json& f = nullptr) { Write(Level::kError, m, f); }

// The line as Write would print it (without the newline), for tests.
std::string FormatLine(Level level, std::string_view message, const nlohmann::json& fields,
                       std::string_view service, std::string_view trace_id,
                       std::string_view time);

// Lines written by this thread while it lives carry `trace_id`.
class ScopedTraceId {
 public:
  explicit ScopedTraceId(std::string trace_id);
  ~ScopedTraceId();
  ScopedTraceId(const ScopedTraceId&) = delete;
  ScopedTraceId& operator=(const ScopedTraceId&) = delete;

 private:
  std::string previous_;
};

}  // namespace helpline::log
