#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/kafka/client.h"
#include "tools/events/event_records.h"

namespace helpline::events {

// Where reading starts (or, for export, stops) in every partition.
struct StreamPosition {
  enum class Kind { kBeginning, kEnd, kOffset, kTime };
  Kind kind = Kind::kBeginning;
  int64_t offset = 0;
  // The Kafka records' timestamps (when they were written), not the events'
  // `time`, which follows the service's clock.
  absl::Time time;
};

// What `helpline-events tail|export ...` was asked to do.
struct ToolOptions {
  bool tail = true;  // else export
  kafka::ClientConfig client;
  std::vector<std::string> topics;
  std::vector<int32_t> partitions;  // empty: all
  StreamPosition from;
  StreamPosition to;  // export only
  std::set<std::string> types;  // full names; empty: all
  // The aggregate id; a trailing '*' matches it as a prefix.
  std::string subject;
  std::string correlation_id;
  bool csv = false;
  JsonStyle json;
  int64_t max_events = -1;  // -1: no limit
  absl::Duration duration = absl::InfiniteDuration();  // tail only
  std::string output_file;  // empty: standard output
};

// INVALID_ARGUMENT naming the flag at fault.
absl::StatusOr<ToolOptions> ParseToolArgs(const std::vector<std::string>& args);

struct ToolSummary {
  int64_t written = 0;
  int64_t undecodable = 0;
};

// Reads, filters and writes events until the range ends (export), or `stop`
// is set, `max_events` were written or `duration` passed (tail). Each record
// that cannot be decoded is reported on `err` and skipped. Errors reaching
// Kafka or the output are returned.
absl::StatusOr<ToolSummary> RunTool(const ToolOptions& options, std::ostream& out,
                                    std::ostream& err, const std::atomic<bool>& stop);

extern const std::string kToolUsage;

// The local stack's broker ($HL_KAFKA_PORT, else 19092), with the SASL
// password from HELPLINE_KAFKA_SASL_PASSWORD if set.
kafka::ClientConfig DefaultKafkaClient();
// The Kafka flags every tool reading the streams takes (--bootstrap-servers,
// --topic-prefix, --security-protocol, --sasl-*, --ssl-ca-location,
// --property), and their help text. True when `arg` was one of them; an
// INVALID_ARGUMENT naming it when its value is wrong.
absl::StatusOr<bool> ParseKafkaFlag(const std::string& arg, const std::string& value,
                                    kafka::ClientConfig& client, std::string& prefix);
extern const char kKafkaFlagsUsage[];

}  // namespace helpline::events
