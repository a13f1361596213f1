#include "tools/events/events_tool.h"

#include <cstdlib>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/rdkafka_consumer.h"

namespace helpline::events {

const char kKafkaFlagsUsage[] = R"(  --bootstrap-servers H:P      default 127.0.0.1:$HL_KAFKA_PORT (19092)
  --topic-prefix P             prepended to topic names (test runs)
  --security-protocol P        plaintext, ssl, sasl_plaintext, sasl_ssl
  --sasl-mechanism M           PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
  --sasl-username U            the password comes from HELPLINE_KAFKA_SASL_PASSWORD
  --ssl-ca-location FILE       CA of the brokers' certificates
  --property KEY=VALUE         any librdkafka setting (repeatable)
)";

const std::string kToolUsage = absl::StrCat(R"(helpline-events: Helpline's event streams as JSON lines or CSV.

  helpline-events tail [TOPIC...] [options]     follow events as they are written
  helpline-events export [TOPIC...] [options]   write a range of events, then exit

TOPIC is a service (identity, catalog, matching, sessions, payments), a topic
name (helpline.sessions.events) or `all` (the default: every events topic).

Where to read:
  --from POSITION        beginning, now, an offset (in every partition), a time
                         (2026-11-28T09:00:00Z) or a time ago (15m, 2h, 7d)
                         (tail: default now; export: default beginning)
  --to POSITION          export only: where to stop (default now: what is there
                         when the export starts)
  --partition N          only this partition (repeatable)
  Times are the records' Kafka timestamps (when they were written); an
  event's own `time` follows the service's clock, 60x fast on the demo stack.

What to keep:
  --type NAME            an event type, short (SessionEnded) or full
                         (helpline.sessions.v1.SessionEnded); repeatable
  --subject ID           one aggregate (its id is the record key); ID* for a prefix
  --correlation-id ID    what one user action set off, across services
  --max N                stop after N events
  --for DURATION         tail only: stop after this long (30s, 5m)

Output:
  --format jsonl|csv     jsonl (default): one CloudEvents JSON object per
                         event, `data` the event in the protobuf JSON mapping;
                         csv: a header, then one row per event with the
                         event's fields flattened into dotted columns
  --proto-names          JSON with the .proto field names (amount_minor), not
                         lowerCamelCase (amountMinor)
  --output FILE          write here instead of standard output

Kafka (defaults reach the local stack):
)", kKafkaFlagsUsage, R"(
Records that are not events of their topic are reported on standard error and
skipped; the exit status is 0 unless Kafka or the output fails (1) or the
command line is wrong (2). Event types and fields: docs/events.md.
)");

namespace {

using Kind = StreamPosition::Kind;

absl::Status FlagError(const std::string& flag, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", problem));
}

absl::StatusOr<StreamPosition> ParsePosition(const std::string& flag, const std::string& text) {
  StreamPosition position;
  int64_t offset = 0;
  absl::Duration ago;
  std::string error;
  if (text == "beginning") {
    position.kind = Kind::kBeginning;
  } else if (text == "now" || text == "end") {
    position.kind = Kind::kEnd;
  } else if (absl::SimpleAtoi(text, &offset)) {
    if (offset < 0) return FlagError(flag, "an offset is 0 or more");
    position.kind = Kind::kOffset;
    position.offset = offset;
  } else if (absl::ParseTime(absl::RFC3339_full, text, &position.time, &error)) {
    position.kind = Kind::kTime;
  } else if (absl::EndsWith(text, "d") &&
             absl::SimpleAtoi(text.substr(0, text.size() - 1), &offset) && offset >= 0) {
    position.kind = Kind::kTime;
    position.time = absl::Now() - absl::Hours(24 * offset);
  } else if (absl::ParseDuration(text, &ago) && ago >= absl::ZeroDuration()) {
    position.kind = Kind::kTime;
    position.time = absl::Now() - ago;
  } else {
    return FlagError(flag, absl::StrCat("'", text,
                                        "' is not beginning, now, an offset, an RFC 3339 time "
                                        "or a duration"));
  }
  return position;
}

std::string DefaultBootstrapServers() {
  if (const char* port = std::getenv("HL_KAFKA_PORT"); port != nullptr && *port && *port != '0') {
    return absl::StrCat("127.0.0.1:", port);
  }
  return "127.0.0.1:19092";
}

bool MatchesSubject(const std::string& pattern, const std::string& key) {
  if (pattern.empty()) return true;
  if (absl::EndsWith(pattern, "*")) {
    return absl::StartsWith(key, pattern.substr(0, pattern.size() - 1));
  }
  return key == pattern;
}

// Positions resolved to offsets, per partition.
struct PartitionRange {
  std::string topic;
  int32_t partition = 0;
  int64_t start = 0;
  int64_t end = -1;  // export: stop here (exclusive)
};

absl::StatusOr<std::vector<int64_t>> OffsetsForTime(kafka::RdKafkaConsumer& consumer,
                                                    const std::vector<PartitionRange>& ranges,
                                                    absl::Time time) {
  std::vector<RdKafka::TopicPartition*> native;
  for (const PartitionRange& range : ranges) {
    native.push_back(
        RdKafka::TopicPartition::create(range.topic, range.partition, absl::ToUnixMillis(time)));
  }
  RdKafka::ErrorCode code = consumer.native()->offsetsForTimes(native, 30000);
  std::vector<int64_t> offsets;
  for (RdKafka::TopicPartition* partition : native) offsets.push_back(partition->offset());
  RdKafka::TopicPartition::destroy(native);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("offsets for a time: ", RdKafka::err2str(code)));
  }
  return offsets;
}

// Offsets of `position` in each range's partition, within [low, high].
absl::StatusOr<std::vector<int64_t>> Resolve(kafka::RdKafkaConsumer& consumer,
                                             const std::vector<PartitionRange>& ranges,
                                             const std::vector<std::pair<int64_t, int64_t>>& marks,
                                             const StreamPosition& position) {
  std::vector<int64_t> offsets(ranges.size());
  std::vector<int64_t> by_time;
  if (position.kind == Kind::kTime) {
    absl::StatusOr<std::vector<int64_t>> found = OffsetsForTime(consumer, ranges, position.time);
    if (!found.ok()) return found.status();
    by_time = *std::move(found);
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    auto [low, high] = marks[i];
    switch (position.kind) {
      case Kind::kBeginning: offsets[i] = low; break;
      case Kind::kEnd: offsets[i] = high; break;
      case Kind::kOffset: offsets[i] = std::clamp(position.offset, low, high); break;
      case Kind::kTime: offsets[i] = by_time[i] < 0 ? high : std::clamp(by_time[i], low, high);
    }
  }
  return offsets;
}

std::string Where(const kafka::Record& record) {
  return absl::StrCat(record.topic, "[", record.partition, "]@", record.offset);
}

}  // namespace

kafka::ClientConfig DefaultKafkaClient() {
  kafka::ClientConfig client;
  client.bootstrap_servers = DefaultBootstrapServers();
  if (const char* password = std::getenv("HELPLINE_KAFKA_SASL_PASSWORD")) {
    client.properties["sasl.password"] = password;
  }
  return client;
}

absl::StatusOr<bool> ParseKafkaFlag(const std::string& arg, const std::string& value,
                                    kafka::ClientConfig& client, std::string& prefix) {
  if (arg == "--bootstrap-servers") {
    client.bootstrap_servers = value;
  } else if (arg == "--topic-prefix") {
    prefix = value;
  } else if (arg == "--security-protocol") {
    client.properties["security.protocol"] = value;
  } else if (arg == "--sasl-mechanism") {
    client.properties["sasl.mechanisms"] = value;
  } else if (arg == "--sasl-username") {
    client.properties["sasl.username"] = value;
  } else if (arg == "--ssl-ca-location") {
    client.properties["ssl.ca.location"] = value;
  } else if (arg == "--property") {
    size_t equals = value.find('=');
    if (equals == std::string::npos || equals == 0) return FlagError(arg, "KEY=VALUE");
    client.properties[value.substr(0, equals)] = value.substr(equals + 1);
  } else {
    return false;
  }
  return true;
}

absl::StatusOr<ToolOptions> ParseToolArgs(const std::vector<std::string>& args) {
  ToolOptions options;
  options.client = DefaultKafkaClient();
  if (args.empty() || (args[0] != "tail" && args[0] != "export")) {
    return absl::InvalidArgumentError("the first word is tail or export");
  }
  options.tail = args[0] == "tail";
  options.from.kind = options.tail ? Kind::kEnd : Kind::kBeginning;
  options.to.kind = Kind::kEnd;
  std::string prefix;
  std::vector<std::string> named_topics;
  std::vector<std::string> type_names;
  bool to_given = false;
  bool for_given = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--")) {
      named_topics.push_back(arg);
      continue;
    }
    if (arg == "--proto-names") {
      options.json.proto_names = true;
      continue;
    }
    if (i + 1 >= args.size()) return FlagError(arg, "needs a value");
    const std::string& value = args[++i];
    int64_t number = 0;
    if (arg == "--from" || arg == "--to") {
      absl::StatusOr<StreamPosition> position = ParsePosition(arg, value);
      if (!position.ok()) return position.status();
      (arg == "--from" ? options.from : options.to) = *position;
      to_given |= arg == "--to";
    } else if (arg == "--partition") {
      if (!absl::SimpleAtoi(value, &number) || number < 0) {
        return FlagError(arg, "a partition number, 0 or more");
      }
      options.partitions.push_back(static_cast<int32_t>(number));
    } else if (arg == "--type") {
      type_names.push_back(value);
    } else if (arg == "--subject") {
      options.subject = value;
    } else if (arg == "--correlation-id") {
      options.correlation_id = value;
    } else if (arg == "--max") {
      if (!absl::SimpleAtoi(value, &number) || number < 1) {
        return FlagError(arg, "a count, 1 or more");
      }
      options.max_events = number;
    } else if (arg == "--for") {
      if (!absl::ParseDuration(value, &options.duration) ||
          options.duration <= absl::ZeroDuration()) {
        return FlagError(arg, "a duration such as 30s or 5m");
      }
      for_given = true;
    } else if (arg == "--format") {
      if (value != "jsonl" && value != "csv") return FlagError(arg, "jsonl or csv");
      options.csv = value == "csv";
    } else if (arg == "--output") {
      options.output_file = value;
    } else {
      absl::StatusOr<bool> taken = ParseKafkaFlag(arg, value, options.client, prefix);
      if (!taken.ok()) return taken.status();
      if (!*taken) return FlagError(arg, "unknown option");
    }
  }
  if (options.tail && to_given) return FlagError("--to", "only for export");
  if (!options.tail && for_given) return FlagError("--for", "only for tail");

  const std::vector<EventStream>& streams = CompiledEventStreams();
  std::vector<const EventStream*> selected;
  if (named_topics.empty()) named_topics.push_back("all");
  for (const std::string& name : named_topics) {
    if (name == "all") {
      for (const EventStream& stream : streams) selected.push_back(&stream);
      continue;
    }
    const EventStream* stream = StreamForTopic(streams, name);
    for (const EventStream& candidate : streams) {
      if (candidate.service == name) stream = &candidate;
    }
    if (stream == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic '", name, "': not a service's events topic (identity, catalog, matching, "
          "sessions, payments or helpline.<service>.events)"));
    }
    selected.push_back(stream);
  }
  for (const EventStream* stream : selected) {
    std::string topic = stream->Topic(prefix);
    if (std::find(options.topics.begin(), options.topics.end(), topic) == options.topics.end()) {
      options.topics.push_back(topic);
    }
  }
  for (const std::string& name : type_names) {
    std::string found;
    for (const EventStream* stream : selected) {
      if (const google::protobuf::FieldDescriptor* field = stream->EventField(name)) {
        found = field->message_type()->full_name();
      }
    }
    if (found.empty()) {
      return FlagError("--type", absl::StrCat("no event type '", name,
                                              "' in the topics read (see docs/events.md)"));
    }
    options.types.insert(found);
  }
  return options;
}

absl::StatusOr<ToolSummary> RunTool(const ToolOptions& options, std::ostream& out,
                                    std::ostream& err, const std::atomic<bool>& stop) {
  kafka::ConsumerOptions consumer_options;
  consumer_options.group_id = absl::StrCat("helpline-events-", ids::NewUuidV7());
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaConsumer>> consumer =
      kafka::RdKafkaConsumer::Create(options.client, consumer_options);
  if (!consumer.ok()) return consumer.status();

  std::vector<PartitionRange> ranges;
  std::vector<std::pair<int64_t, int64_t>> marks;
  for (const std::string& topic : options.topics) {
    absl::StatusOr<int> count = kafka::PartitionCount(options.client, topic);
    if (!count.ok()) return count.status();
    for (int32_t partition = 0; partition < *count; ++partition) {
      if (!options.partitions.empty() &&
          std::find(options.partitions.begin(), options.partitions.end(), partition) ==
              options.partitions.end()) {
        continue;
      }
      absl::StatusOr<std::pair<int64_t, int64_t>> watermarks =
          (*consumer)->WatermarkOffsets(topic, partition, absl::Seconds(30));
      if (!watermarks.ok()) return watermarks.status();
      ranges.push_back(PartitionRange{topic, partition});
      marks.push_back(*watermarks);
    }
  }
  if (ranges.empty()) return absl::InvalidArgumentError("--partition: no such partition");
  absl::StatusOr<std::vector<int64_t>> starts = Resolve(**consumer, ranges, marks, options.from);
  if (!starts.ok()) return starts.status();
  std::vector<int64_t> ends(ranges.size(), -1);
  if (!options.tail) {
    absl::StatusOr<std::vector<int64_t>> resolved = Resolve(**consumer, ranges, marks, options.to);
    if (!resolved.ok()) return resolved.status();
    ends = *std::move(resolved);
  }
  std::vector<kafka::TopicPartitionOffset> assignment;
  std::map<std::pair<std::string, int32_t>, size_t> index;
  for (size_t i = 0; i < ranges.size(); ++i) {
    ranges[i].start = (*starts)[i];
    ranges[i].end = ends[i];
    assignment.push_back({ranges[i].topic, ranges[i].partition, ranges[i].start});
    index[{ranges[i].topic, ranges[i].partition}] = i;
  }
  if (absl::Status status = (*consumer)->Assign(assignment); !status.ok()) return status;

  std::vector<const google::protobuf::Descriptor*> csv_types;
  for (const std::string& topic : options.topics) {
    const EventStream* stream = StreamForTopic(CompiledEventStreams(), topic);
    for (const google::protobuf::FieldDescriptor* field : stream->event_fields) {
      if (options.types.empty() || options.types.count(field->message_type()->full_name()) > 0) {
        csv_types.push_back(field->message_type());
      }
    }
  }
  CsvTable table(csv_types);
  if (options.csv) out << table.HeaderLine() << "\n";

  ToolSummary summary;
  std::vector<bool> done(ranges.size(), false);
  auto export_done = [&]() {
    if (options.tail) return false;
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (done[i]) continue;
      if (ranges[i].start >= ranges[i].end) {
        done[i] = true;
        continue;
      }
      absl::StatusOr<int64_t> position =
          (*consumer)->Position(ranges[i].topic, ranges[i].partition);
      if (!position.ok() || *position < ranges[i].end) return false;
      done[i] = true;
    }
    return true;
  };
  absl::Time deadline = absl::Now() + options.duration;
  while (!stop.load() && absl::Now() < deadline && !export_done() &&
         (options.max_events < 0 || summary.written < options.max_events)) {
    absl::StatusOr<std::optional<kafka::Record>> polled =
        (*consumer)->Poll(absl::Milliseconds(200));
    if (!polled.ok()) {
      err << "helpline-events: " << polled.status().message() << " (retrying)\n";
      continue;
    }
    if (!polled->has_value()) continue;
    const kafka::Record& record = **polled;
    auto at = index.find({record.topic, record.partition});
    if (at == index.end()) continue;
    if (!options.tail && record.offset >= ranges[at->second].end) continue;
    if (!MatchesSubject(options.subject, record.key)) continue;
    std::optional<std::string> type_header = record.HeaderValue("ce_type");
    if (!options.types.empty() && type_header.has_value() &&
        options.types.count(*type_header) == 0) {
      continue;
    }
    const EventStream* stream = StreamForTopic(CompiledEventStreams(), record.topic);
    absl::StatusOr<DecodedEvent> event = DecodeEvent(record, *stream);
    if (!event.ok()) {
      ++summary.undecodable;
      err << "helpline-events: skipped " << Where(record) << ": " << event.status().message()
          << "\n";
      continue;
    }
    if (!options.types.empty() && options.types.count(event->Type()) == 0) continue;
    if (!options.correlation_id.empty() && event->meta.correlation_id() != options.correlation_id) {
      continue;
    }
    out << (options.csv ? table.Row(record, *event) : CloudEventJson(record, *event, options.json))
        << "\n";
    if (options.tail) out.flush();
    if (!out) return absl::UnavailableError("cannot write the output");
    ++summary.written;
  }
  out.flush();
  if (!out) return absl::UnavailableError("cannot write the output");
  return summary;
}

}  // namespace helpline::events
