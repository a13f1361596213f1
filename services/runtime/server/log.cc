#include "services/runtime/server/log.h"

#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/support/log.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace helpline::log {
namespace {

thread_local std::string current_trace_id;

struct State {
  std::shared_ptr<spdlog::logger> logger;
  std::string service;
  Level level = Level::kInfo;
};

State& GlobalState() {
  static State* state = [] {
    auto* s = new State;
    s->logger = std::make_shared<spdlog::logger>(
        "helpline", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    s->logger->set_pattern("%v");
    s->logger->flush_on(spdlog::level::trace);
    return s;
  }();
  return *state;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void FromGrpc(gpr_log_func_args* args) {
  Level level = args->severity == GPR_LOG_SEVERITY_ERROR   ? Level::kError
                : args->severity == GPR_LOG_SEVERITY_INFO ? Level::kInfo
                                                          : Level::kDebug;
  Write(level, args->message, {{"component", "grpc"}, {"source", args->file}, {"line", args->line}});
}

}  // namespace

bool ParseLevel(std::string_view text, Level* level) {
  for (Level candidate : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(candidate)) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

void Init(const Options& options) {
  State& state = GlobalState();
  state.service = options.service;
  state.level = options.level;
  if (!options.file.empty()) {
    state.logger = std::make_shared<spdlog::logger>(
        "helpline", std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file));
    state.logger->set_pattern("%v");
    state.logger->flush_on(spdlog::level::trace);
  }
  gpr_set_log_function(FromGrpc);
  gpr_set_log_verbosity(options.level == Level::kDebug ? GPR_LOG_SEVERITY_DEBUG
                                                       : GPR_LOG_SEVERITY_ERROR);
}

std::string FormatLine(Level level, std::string_view message, const nlohmann::json& fields,
                       std::string_view service, std::string_view trace_id,
                       std::string_view time) {
  nlohmann::json line = nlohmann::json::object();
  line["time"] = time;
  line["level"] = LevelName(level);
  if (!service.empty()) line["service"] = service;
  line["msg"] = message;
  if (!trace_id.empty()) line["trace_id"] = trace_id;
  if (fields.is_object()) {
    for (const auto& [name, value] : fields.items()) {
      if (!line.contains(name)) line[name] = value;
    }
  }
  // Invalid UTF-8 (a user's bytes) is replaced rather than dropping the line.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Write(Level level, std::string_view message, const nlohmann::json& fields) {
  State& state = GlobalState();
  if (level < state.level) return;
  std::string time = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  std::string line = FormatLine(level, message, fields, state.service, current_trace_id, time);
  state.logger->log(spdlog::level::info, spdlog::string_view_t(line));
}

ScopedTraceId::ScopedTraceId(std::string trace_id) : previous_(std::move(current_trace_id)) {
  current_trace_id = std::move(trace_id);
}

ScopedTraceId::~ScopedTraceId() { current_trace_id = std::move(previous_); }

}  // namespace helpline::log
