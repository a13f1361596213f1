// helpline-sponsors: each sponsor program's budget burning down, from
// payments' events: paid in, reserved by open holds, spent, sessions paid,
// and the day the budget runs out at the last 7 days' pace. --watch keeps
// following the stream and prints the table again every interval.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "helpline/payments/v1/events.pb.h"
#include "services/payments/domain/sponsor_burn_down.h"
#include "services/runtime/eventsourcing/topics.h"
#include "tools/events/events_tool.h"
#include "tools/events/topic_reader.h"

namespace helpline::sponsors {
namespace {

constexpr char kUsage[] = R"(helpline-sponsors: sponsor programs' budgets burning down.

  helpline-sponsors [options]

For every sponsor program, from payments' events: the sponsor's budget paid
in and what is left of it (a sponsor's programs share its budget), what the
program's open holds reserve, what its sessions spent (refunds given back),
the sessions it paid, the sponsor's spending per day over the last 7 days,
and the date the budget runs out at that pace. Amounts are in the currency's
minor unit. "Now" is the later of this machine's clock and the newest
event's time (the local demo's services run a faster clock).

Options:
  --watch D     keep following payments' events; print the table every D (e.g. 5s)
  --json        one JSON object per table instead of text

Kafka (defaults reach the local stack):
)";

std::atomic<bool> stop_requested{false};
void RequestStop(int) { stop_requested.store(true); }

std::string Date(const std::optional<absl::Time>& at) {
  return at ? absl::FormatTime("%Y-%m-%d", *at, absl::UTCTimeZone()) : "-";
}

void Print(const payments::SponsorBurnDown& burn, bool json) {
  const absl::Time now = std::max(absl::Now(), burn.latest());
  std::vector<payments::SponsorProgramBurn> rows = burn.Report(now);
  if (json) {
    std::cout << "{\"now\":\"" << absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone())
              << "\",\"programs\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const payments::SponsorProgramBurn& r = rows[i];
      std::cout << (i ? "," : "") << "{\"program_id\":\"" << r.program_id << "\",\"sponsor_id\":\""
                << r.sponsor_id << "\",\"currency\":\"" << r.currency
                << "\",\"budget_funded_minor\":" << r.budget_funded_minor
                << ",\"budget_left_minor\":" << r.budget_left_minor
                << ",\"reserved_minor\":" << r.reserved_minor << ",\"spent_minor\":" << r.spent_minor
                << ",\"sessions_paid\":" << r.sessions_paid
                << ",\"pace_minor_per_day\":" << r.pace_minor_per_day << ",\"runs_out_on\":"
                << (r.runs_out_at ? absl::StrCat("\"", Date(r.runs_out_at), "\"") : "null") << "}";
    }
    std::cout << "]}" << std::endl;
    return;
  }
  std::cout << absl::FormatTime("as of %Y-%m-%d %H:%M:%S UTC\n", now, absl::UTCTimeZone());
  std::cout << absl::StrFormat("%-52s %-36s %-4s %10s %10s %9s %9s %9s %9s %-10s\n", "program",
                               "sponsor", "cur", "budget", "left", "reserved", "spent",
                               "sessions", "per day", "runs out");
  for (const payments::SponsorProgramBurn& r : rows) {
    std::cout << absl::StrFormat("%-52s %-36s %-4s %10d %10d %9d %9d %9d %9d %-10s\n",
                                 r.program_id, r.sponsor_id, r.currency, r.budget_funded_minor,
                                 r.budget_left_minor, r.reserved_minor, r.spent_minor,
                                 r.sessions_paid, r.pace_minor_per_day, Date(r.runs_out_at));
  }
  if (rows.empty()) std::cout << "(no sponsor programs yet)\n";
  std::cout << std::flush;
}

int Main(const std::vector<std::string>& args) {
  kafka::ClientConfig client = events::DefaultKafkaClient();
  std::string prefix;
  bool json = false;
  absl::Duration watch = absl::ZeroDuration();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage << events::kKafkaFlagsUsage;
      return 0;
    }
    if (arg == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      std::cerr << "helpline-sponsors: " << arg << ": needs a value (see --help)\n";
      return 2;
    }
    const std::string& value = args[++i];
    if (arg == "--watch") {
      if (!absl::ParseDuration(value, &watch) || watch <= absl::ZeroDuration()) {
        std::cerr << "helpline-sponsors: --watch: a duration such as 5s\n";
        return 2;
      }
      continue;
    }
    absl::StatusOr<bool> taken = events::ParseKafkaFlag(arg, value, client, prefix);
    if (!taken.ok() || !*taken) {
      std::cerr << "helpline-sponsors: "
                << (taken.ok() ? absl::StrCat(arg, ": unknown option") : taken.status().message())
                << " (see --help)\n";
      return 2;
    }
  }
  signal(SIGINT, RequestStop);
  signal(SIGTERM, RequestStop);

  payments::SponsorBurnDown burn;
  events::TopicReading reading;
  reading.follow = watch > absl::ZeroDuration();
  reading.stop = &stop_requested;
  absl::Time next_print = absl::InfiniteFuture();
  reading.caught_up = [&] {
    Print(burn, json);
    next_print = absl::Now() + watch;
  };
  reading.tick = [&] {
    if (absl::Now() < next_print) return;
    Print(burn, json);
    next_print = absl::Now() + watch;
  };
  int undecodable = 0;
  absl::Status read = events::ReadTopic(
      client, es::ServiceTopics::For("payments", prefix).events,
      [&](kafka::Record& record) {
        payments::v1::PaymentsEvent event;
        if (event.ParseFromString(record.value)) {
          burn.Apply(event);
        } else {
          ++undecodable;
        }
      },
      reading);
  if (!read.ok()) {
    std::cerr << "helpline-sponsors: " << read.message() << "\n";
    return 1;
  }
  if (undecodable > 0) std::cerr << "helpline-sponsors: " << undecodable << " records skipped\n";
  return 0;
}

}  // namespace
}  // namespace helpline::sponsors

int main(int argc, char** argv) {
  return helpline::sponsors::Main(std::vector<std::string>(argv + 1, argv + argc));
}
