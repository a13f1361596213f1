// helpline-whatif: the recorded help requests, bookings and presence replayed
// under the recorded policy and under another, side by side (docs/whatif.md).
// It reads Kafka and writes nothing.
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/runtime/eventsourcing/topics.h"
#include "tools/events/events_tool.h"
#include "tools/events/topic_reader.h"
#include "tools/whatif/report.h"

namespace helpline::whatif {
namespace {

constexpr char kUsage[] = R"(helpline-whatif: what the recorded demand would have met under another policy.

  helpline-whatif [policy options] [options]

Reads catalog's, matching's, sessions' and payments' events (kept forever),
replays the recorded help requests, bookings, presence, catalog changes and
reviews on a simulated clock through matching's ranking, sessions' billing
and payments' commission, once under the policy the events were recorded
under and once under the policy the options describe, and prints both next
to what really happened. Experts answer offers and calls last as the
recording says they tend to (the report lists every assumption). Nothing is
written anywhere.

Policy options (the what-if; unset ones keep the recorded policy):
  --offer-window D          how long an expert has to answer an offer (e.g. 20s)
  --ranking W               ranking weights, any of rating=,acceptance=,price=,fairness=
                            (matching's: rating=0.4,acceptance=0.25,price=0.15,fairness=0.2)
  --fairness-window D       offers in this window count against an expert (matching's: 1h)
  --commission BPS          one commission for every category and program, in basis points
  --commission-overrides S  category:<id>=<bps>,program:<id>=<bps> on top
  --minimum-minutes N       every per-minute price's minimum minutes (1 to 60)
  --refund-window D         how long after a session a refund is granted (e.g. 24h)

The recorded policy: the offer window and the commission rates come from the
events; what they do not carry can be given if the deployment changed it:
  --recorded-ranking W, --recorded-fairness-window D, --recorded-refund-window D
                            (defaults: matching's weights, 1h, 72h)

Options:
  --since T, --until T      simulate the requests asked (bookings starting) in
                            [T, T) only, RFC 3339 (e.g. 2026-11-01T00:00:00Z)
  --runs N                  simulate each policy N times, with seeds S to S+N-1; the
                            report shows medians, and in how many runs the what-if
                            moved each figure the way its median did (default 5)
  --seed S                  the first run's seed (default 1)
  --json                    one JSON object instead of the table

Kafka (defaults reach the local stack):
)";

constexpr char kExitCodes[] = R"(
Exit status: 0 with a report, 2 for a wrong command line, 3 when Kafka cannot
be read.
)";

struct Options {
  Policy recorded_defaults;
  // --commission replaces every rate first; the other changes follow in order.
  std::optional<int32_t> commission_bps;
  std::vector<std::function<absl::Status(Policy&)>> what_if;
  Window window;
  uint64_t seed = 1;
  int runs = 5;
  bool json = false;
  kafka::ClientConfig client = events::DefaultKafkaClient();
  std::string prefix;
};

absl::Status ParseDurationFlag(const std::string& flag, const std::string& value,
                               absl::Duration& out) {
  if (!absl::ParseDuration(value, &out) || out <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": a positive duration such as 20s"));
  }
  return absl::OkStatus();
}

absl::Status ParseTimeFlag(const std::string& flag, const std::string& value, absl::Time& out) {
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, value, &out, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": an RFC 3339 time such as 2026-11-01T00:00:00Z"));
  }
  return absl::OkStatus();
}

// Takes `flag` with its `value`; false when it is no option of this tool.
absl::StatusOr<bool> ParseOption(const std::string& flag, const std::string& value,
                                 Options& options) {
  if (flag == "--offer-window") {
    absl::Duration window;
    if (absl::Status ok = ParseDurationFlag(flag, value, window); !ok.ok()) return ok;
    options.what_if.push_back([window](Policy& p) {
      p.offer_window = window;
      return absl::OkStatus();
    });
  } else if (flag == "--ranking" || flag == "--recorded-ranking") {
    matching::RankingOptions check;
    if (absl::Status ok = ParseRankingWeights(value, check); !ok.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", ok.message()));
    }
    if (flag == "--ranking") {
      options.what_if.push_back([value](Policy& p) { return ParseRankingWeights(value, p.ranking); });
    } else {
      ParseRankingWeights(value, options.recorded_defaults.ranking).IgnoreError();
    }
  } else if (flag == "--fairness-window" || flag == "--recorded-fairness-window") {
    absl::Duration window;
    if (absl::Status ok = ParseDurationFlag(flag, value, window); !ok.ok()) return ok;
    if (flag == "--fairness-window") {
      options.what_if.push_back([window](Policy& p) {
        p.ranking.fairness_window = window;
        return absl::OkStatus();
      });
    } else {
      options.recorded_defaults.ranking.fairness_window = window;
    }
  } else if (flag == "--commission") {
    int32_t bps = 0;
    if (!absl::SimpleAtoi(value, &bps) || bps < 0 || bps > 10000) {
      return absl::InvalidArgumentError("--commission: basis points, 0 to 10000");
    }
    options.commission_bps = bps;
  } else if (flag == "--commission-overrides") {
    payments::CommissionOptions check;
    if (absl::Status ok = payments::ParseCommissionOverrides(value, check); !ok.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", ok.message()));
    }
    options.what_if.push_back(
        [value](Policy& p) { return payments::ParseCommissionOverrides(value, p.commission); });
  } else if (flag == "--minimum-minutes") {
    int minutes = 0;
    if (!absl::SimpleAtoi(value, &minutes) || minutes < 1 || minutes > 60) {
      return absl::InvalidArgumentError("--minimum-minutes: 1 to 60");
    }
    options.what_if.push_back([minutes](Policy& p) {
      p.minimum_minutes = minutes;
      return absl::OkStatus();
    });
  } else if (flag == "--refund-window" || flag == "--recorded-refund-window") {
    absl::Duration window;
    if (absl::Status ok = ParseDurationFlag(flag, value, window); !ok.ok()) return ok;
    if (flag == "--refund-window") {
      options.what_if.push_back([window](Policy& p) {
        p.refund_window = window;
        return absl::OkStatus();
      });
    } else {
      options.recorded_defaults.refund_window = window;
    }
  } else if (flag == "--since" || flag == "--until") {
    absl::Time& bound = flag == "--since" ? options.window.since : options.window.until;
    if (absl::Status ok = ParseTimeFlag(flag, value, bound); !ok.ok()) return ok;
  } else if (flag == "--runs") {
    if (!absl::SimpleAtoi(value, &options.runs) || options.runs < 1 || options.runs > 1000) {
      return absl::InvalidArgumentError("--runs: 1 to 1000");
    }
  } else if (flag == "--seed") {
    if (!absl::SimpleAtoi(value, &options.seed)) {
      return absl::InvalidArgumentError("--seed: a whole number");
    }
  } else {
    return events::ParseKafkaFlag(flag, value, options.client, options.prefix);
  }
  return true;
}

template <class Event>
absl::Status Read(const Options& options, const std::string& service, Recording& recording,
                  int64_t& undecodable) {
  return events::ReadTopic(options.client, es::ServiceTopics::For(service, options.prefix).events,
                           [&](kafka::Record& record) {
                             Event event;
                             if (event.ParseFromString(record.value)) {
                               recording.Apply(event);
                             } else {
                               ++undecodable;
                             }
                           });
}

int Main(const std::vector<std::string>& args) {
  Options options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage << events::kKafkaFlagsUsage << kExitCodes;
      return 0;
    }
    if (arg == "--json") {
      options.json = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      std::cerr << "helpline-whatif: " << arg << ": needs a value (see --help)\n";
      return 2;
    }
    absl::StatusOr<bool> taken = ParseOption(arg, args[++i], options);
    if (!taken.ok() || !*taken) {
      std::cerr << "helpline-whatif: "
                << (taken.ok() ? absl::StrCat(arg, ": unknown option") : taken.status().message())
                << " (see --help)\n";
      return 2;
    }
  }
  if (options.window.since >= options.window.until) {
    std::cerr << "helpline-whatif: --since must come before --until\n";
    return 2;
  }

  Recording recording;
  int64_t undecodable = 0;
  for (absl::Status read :
       {Read<catalog::v1::CatalogEvent>(options, "catalog", recording, undecodable),
        Read<matching::v1::MatchingEvent>(options, "matching", recording, undecodable),
        Read<sessions::v1::SessionsEvent>(options, "sessions", recording, undecodable),
        Read<payments::v1::PaymentsEvent>(options, "payments", recording, undecodable)}) {
    if (!read.ok()) {
      std::cerr << "helpline-whatif: " << read.message() << "\n";
      return 3;
    }
  }
  if (undecodable > 0) std::cerr << "helpline-whatif: " << undecodable << " records skipped\n";
  recording.Finish();

  Report report;
  report.window = options.window;
  report.events = recording.events();
  report.seed = options.seed;
  report.currency = recording.currency();
  report.recorded_policy = RecordedPolicy(recording, options.recorded_defaults);
  report.what_if_policy = report.recorded_policy;
  if (options.commission_bps) {
    payments::CommissionOptions& commission = report.what_if_policy.commission;
    commission.default_bps = *options.commission_bps;
    commission.category_bps.clear();
    commission.program_bps.clear();
  }
  for (const auto& change : options.what_if) {
    if (absl::Status ok = change(report.what_if_policy); !ok.ok()) {
      std::cerr << "helpline-whatif: " << ok.message() << "\n";
      return 2;
    }
  }
  report.recorded = RecordedOutcome(recording, options.window);
  for (int run = 0; run < options.runs; ++run) {
    const uint64_t seed = options.seed + static_cast<uint64_t>(run);
    report.simulated_recorded_policy.push_back(
        Simulate(recording, report.recorded_policy, options.window, seed));
    report.simulated_what_if.push_back(
        Simulate(recording, report.what_if_policy, options.window, seed));
  }
  report.experts = recording.Experts();
  report.assumptions = Assumptions(recording);
  std::cout << (options.json ? ReportJson(report) + "\n" : ReportTable(report)) << std::flush;
  return 0;
}

}  // namespace
}  // namespace helpline::whatif

int main(int argc, char** argv) {
  return helpline::whatif::Main(std::vector<std::string>(argv + 1, argv + argc));
}
