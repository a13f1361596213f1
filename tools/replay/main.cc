// helpline-replay: re-decides what the services recorded, in process, with
// their own Decide and Apply, and reports the first event that comes out
// differently. It reads Kafka and writes nothing anywhere.
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/identity/domain/identity_domain.h"
#include "services/matching/domain/matching_domain.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/rdkafka_consumer.h"
#include "services/sessions/domain/sessions_domain.h"
#include "tools/events/events_tool.h"
#include "tools/events/topic_reader.h"
#include "tools/replay/replay.h"

namespace helpline::replay {
namespace {

constexpr char kUsage[] = R"(helpline-replay: re-decide what Helpline recorded and report any difference.

  helpline-replay [SERVICE...] [options]

SERVICE is identity, catalog, matching, sessions or payments (default: all).
For each, every command its processor has decided (those its commands topic
still holds) is decided again in process, with the service's own rules, at
the time its recorded events carry; every timer fires again at its recorded
time. Each event must come out as recorded: same type, same fields, same
order per aggregate. Events whose commands have left the commands topic are
applied as recorded (counted, not checked). Nothing is written to Kafka.

Options:
  --json                 one JSON object instead of the table
  --dedupe-window D      the processors' dedupe window (default 24h)
  --ignore-event-ids     compare events without their ids (for events written
                         before ids were derived from the event, 2026-12)

Kafka (defaults reach the local stack):
)";

constexpr char kExitCodes[] = R"(
Exit status: 0 when everything re-decided as recorded, 1 when something
diverged (the first divergence of each partition is shown), 2 for a wrong
command line, 3 when Kafka cannot be read.
)";

const std::map<std::string, const es::AggregateType*>& Services() {
  static const auto* services = new std::map<std::string, const es::AggregateType*>{
      {"identity", &identity::IdentityType()},
      {"catalog", &catalog::CatalogType()},
      {"matching", &matching::MatchingType()},
      {"sessions", &sessions::SessionsType()},
      {"payments", &payments::PaymentsType()}};
  return *services;
}

// Every record of `topic` up to `ends` (default: its end now), by partition.
absl::StatusOr<std::map<int32_t, std::vector<kafka::Record>>> ReadAll(
    const kafka::ClientConfig& client, const std::string& topic,
    std::map<int32_t, int64_t> ends = {}) {
  std::map<int32_t, std::vector<kafka::Record>> records;
  events::TopicReading reading;
  reading.ends = std::move(ends);
  absl::Status read = events::ReadTopic(
      client, topic, [&](kafka::Record& record) { records[record.partition].push_back(std::move(record)); },
      reading);
  if (!read.ok()) return read;
  return records;
}

// How far the service's processor has decided each commands partition: its
// group's committed offsets.
absl::StatusOr<std::map<int32_t, int64_t>> DecidedUpTo(const kafka::ClientConfig& client,
                                                       const std::string& service,
                                                       const std::string& commands_topic) {
  kafka::ConsumerOptions options;
  options.group_id = absl::StrCat(service, "-processor");
  // The settled offsets, not waiting for a transaction still committing:
  // commands decided past them are read as the events' (applied, unchecked).
  options.read_committed = false;
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaConsumer>> consumer =
      kafka::RdKafkaConsumer::Create(client, options);
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<int> partitions = (*consumer)->PartitionCount(commands_topic, absl::Seconds(30));
  if (!partitions.ok()) return partitions.status();
  std::vector<kafka::TopicPartitionOffset> asked;
  for (int32_t partition = 0; partition < *partitions; ++partition) {
    asked.push_back({commands_topic, partition, -1});
  }
  absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> committed =
      (*consumer)->Committed(asked, absl::Seconds(30));
  if (!committed.ok()) return committed.status();
  std::map<int32_t, int64_t> ends;
  for (const kafka::TopicPartitionOffset& each : *committed) {
    ends[each.partition] = std::max<int64_t>(0, each.offset);
  }
  return ends;
}

struct Options {
  std::vector<std::string> services;
  kafka::ClientConfig client = events::DefaultKafkaClient();
  std::string prefix;
  bool json = false;
  bool ignore_event_ids = false;
  absl::Duration dedupe_window = absl::Hours(24);
};

absl::StatusOr<Options> Parse(const std::vector<std::string>& args) {
  Options options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--json") {
      options.json = true;
      continue;
    }
    if (arg == "--ignore-event-ids") {
      options.ignore_event_ids = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      if (!Services().contains(arg)) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", arg, "' is not identity, catalog, matching, sessions or payments"));
      }
      options.services.push_back(arg);
      continue;
    }
    if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(arg, ": needs a value"));
    const std::string& value = args[++i];
    if (arg == "--dedupe-window") {
      if (!absl::ParseDuration(value, &options.dedupe_window) ||
          options.dedupe_window <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError("--dedupe-window: a duration such as 24h");
      }
      continue;
    }
    absl::StatusOr<bool> taken = events::ParseKafkaFlag(arg, value, options.client, options.prefix);
    if (!taken.ok()) return taken.status();
    if (!*taken) return absl::InvalidArgumentError(absl::StrCat(arg, ": unknown option"));
  }
  if (options.services.empty()) {
    for (const auto& [name, type] : Services()) options.services.push_back(name);
  }
  return options;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

int Run(const Options& options) {
  std::vector<ReplayReport> reports;
  absl::Duration reading;
  for (const std::string& name : options.services) {
    const es::ServiceTopics topics = es::ServiceTopics::For(name, options.prefix);
    const absl::Time started = absl::Now();
    RecordedLog log;
    log.service = options.prefix + name;
    log.type = Services().at(name);
    log.dedupe_window = options.dedupe_window;
    log.ignore_event_ids = options.ignore_event_ids;
    // The decided offsets first: every event of those commands is then
    // already written (they commit together).
    absl::StatusOr<std::map<int32_t, int64_t>> decided =
        DecidedUpTo(options.client, log.service, topics.commands);
    absl::StatusOr<std::map<int32_t, std::vector<kafka::Record>>> events =
        decided.ok() ? ReadAll(options.client, topics.events) : decided.status();
    absl::StatusOr<std::map<int32_t, std::vector<kafka::Record>>> commands =
        events.ok() ? ReadAll(options.client, topics.commands, *decided) : events.status();
    if (!commands.ok()) {
      std::cerr << "helpline-replay: " << name << ": " << commands.status().message() << "\n";
      return 3;
    }
    log.events = *std::move(events);
    log.commands = *std::move(commands);
    reading += absl::Now() - started;
    reports.push_back(Replay(log));
  }

  int64_t events = 0, diverged = 0;
  absl::Duration deciding;
  for (const ReplayReport& report : reports) {
    events += report.events_reproduced;
    diverged += static_cast<int64_t>(report.divergences.size());
    deciding += report.took;
  }
  const double rate = events / std::max(1e-9, absl::ToDoubleSeconds(deciding));
  if (options.json) {
    std::cout << "{\"services\":[";
    for (size_t i = 0; i < reports.size(); ++i) {
      const ReplayReport& r = reports[i];
      std::cout << (i ? "," : "") << "{\"service\":" << JsonString(r.service)
                << ",\"commands\":" << r.commands << ",\"timers\":" << r.timers
                << ",\"events_reproduced\":" << r.events_reproduced
                << ",\"events_applied_unchecked\":" << r.events_applied_unchecked
                << ",\"seconds\":" << absl::ToDoubleSeconds(r.took) << ",\"divergences\":[";
      for (size_t j = 0; j < r.divergences.size(); ++j) {
        const Divergence& d = r.divergences[j];
        std::cout << (j ? "," : "") << "{\"partition\":" << d.partition << ",\"offset\":" << d.offset
                  << ",\"aggregate_id\":" << JsonString(d.aggregate_id)
                  << ",\"command_id\":" << JsonString(d.command_id)
                  << ",\"what\":" << JsonString(d.what) << ",\"recorded\":" << JsonString(d.recorded)
                  << ",\"replayed\":" << JsonString(d.replayed) << "}";
      }
      std::cout << "]}";
    }
    std::cout << "],\"events_reproduced\":" << events << ",\"divergences\":" << diverged
              << ",\"deciding_seconds\":" << absl::ToDoubleSeconds(deciding)
              << ",\"reading_seconds\":" << absl::ToDoubleSeconds(reading)
              << ",\"events_per_sec\":" << static_cast<int64_t>(rate) << "}\n";
  } else {
    std::cout << absl::StrFormat("%-22s %9s %7s %11s %10s %9s\n", "service", "commands", "timers",
                                 "reproduced", "unchecked", "diverged");
    for (const ReplayReport& r : reports) {
      std::cout << absl::StrFormat("%-22s %9d %7d %11d %10d %9d\n", r.service, r.commands, r.timers,
                                   r.events_reproduced, r.events_applied_unchecked,
                                   r.divergences.size());
    }
    for (const ReplayReport& r : reports) {
      for (const Divergence& d : r.divergences) {
        std::cout << "\n" << r.service << " partition " << d.partition << ", event offset "
                  << d.offset << ", aggregate " << d.aggregate_id << ", command " << d.command_id
                  << ":\n  " << d.what << "\n  recorded: " << d.recorded
                  << "\n  replayed: " << d.replayed << "\n";
      }
    }
    std::cout << absl::StrFormat(
        "\n%d events re-decided as recorded in %.3f s (%.0f events/s); %d divergences; "
        "read from Kafka in %.1f s\n",
        events, absl::ToDoubleSeconds(deciding), rate, diverged, absl::ToDoubleSeconds(reading));
  }
  return diverged == 0 ? 0 : 1;
}

}  // namespace
}  // namespace helpline::replay

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::cout << helpline::replay::kUsage << helpline::events::kKafkaFlagsUsage
                << helpline::replay::kExitCodes;
      return 0;
    }
  }
  absl::StatusOr<helpline::replay::Options> options = helpline::replay::Parse(args);
  if (!options.ok()) {
    std::cerr << "helpline-replay: " << options.status().message()
              << "\n(see helpline-replay --help)\n";
    return 2;
  }
  return helpline::replay::Run(*options);
}
