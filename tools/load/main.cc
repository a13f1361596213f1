// helpline-load: simulated people and experts running the journey against
// the five services, with a live progress line and a final report.
//   helpline-load --admin-password-file .stack/secrets/admin-password [--duration 30s] ...
#include <signal.h>

#include <atomic>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tools/load/load_generator.h"

namespace {

constexpr char kUsage[] = R"(Usage: helpline-load --admin-password-file FILE [options]

Sets up categories and approved experts who heartbeat, then runs journeys:
people register, search, ask for help, the offered expert accepts, both
join, the person ends the call, reviews, sometimes cancels or asks for a
refund. Prints a progress line every second and a report at the end.

  --duration D             how long to start journeys (default 30s)
  --people N               people asking at once (default 8)
  --experts N              experts online (default 8)
  --categories N           categories the experts are spread over (default 2)
  --rate R                 journeys started per second; 0 = as fast as they go (default 0)
  --call-length D          real time both stay in the call (default 200ms)
  --unanswered-share S     share of offers left to run out unanswered, 0..1 (default 0)
  --journeys-per-person N  journeys before a new person registers (default 5)
  --clock-rate R           the services' clock rate (default 1; the demo stack runs 60)
  --admin-email E          default admin@helpline.local
  --base-port P            services at 127.0.0.1:P+1..P+5 (default 7000)
  --metrics-base-port P    metrics at 127.0.0.1:P+1..P+5, for the commands lag (default 9100)
  --tag T                  names this run's accounts and categories (default load-<time>)
  --json                   the report as one JSON line
)";

std::atomic<bool> stop_requested{false};
void RequestStop(int) { stop_requested.store(true); }

int Fail(const std::string& message) {
  std::cerr << "helpline-load: " << message << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  helpline::load::LoadOptions options;
  options.admin_email = "admin@helpline.local";
  options.run_tag = absl::StrCat("load-", absl::ToUnixSeconds(absl::Now()));
  absl::Duration duration = absl::Seconds(30);
  std::string password_file;
  int base_port = 7000, metrics_base = 9100;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (name == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= argc) return Fail(name + " needs a value");
    const std::string value = argv[++i];
    bool ok = true;
    if (name == "--duration") ok = absl::ParseDuration(value, &duration);
    else if (name == "--people") ok = absl::SimpleAtoi(value, &options.people);
    else if (name == "--experts") ok = absl::SimpleAtoi(value, &options.experts);
    else if (name == "--categories") ok = absl::SimpleAtoi(value, &options.categories);
    else if (name == "--rate") ok = absl::SimpleAtod(value, &options.journeys_per_second);
    else if (name == "--call-length") ok = absl::ParseDuration(value, &options.call_length);
    else if (name == "--unanswered-share") {
      ok = absl::SimpleAtod(value, &options.unanswered_offer_share) &&
           options.unanswered_offer_share >= 0 && options.unanswered_offer_share <= 1;
    }
    else if (name == "--journeys-per-person") {
      ok = absl::SimpleAtoi(value, &options.journeys_per_person);
    } else if (name == "--clock-rate") ok = absl::SimpleAtod(value, &options.clock_rate);
    else if (name == "--admin-email") options.admin_email = value;
    else if (name == "--admin-password-file") password_file = value;
    else if (name == "--base-port") ok = absl::SimpleAtoi(value, &base_port);
    else if (name == "--metrics-base-port") ok = absl::SimpleAtoi(value, &metrics_base);
    else if (name == "--tag") options.run_tag = value;
    else return Fail("unknown option " + name + " (see --help)");
    if (!ok) return Fail(name + ": cannot read '" + value + "'");
  }
  if (options.people < 1 || options.experts < 1 || options.categories < 1 ||
      options.journeys_per_person < 1 || options.clock_rate <= 0) {
    return Fail("--people, --experts, --categories, --journeys-per-person and --clock-rate "
                "must be positive");
  }
  std::ifstream secret(password_file);
  if (!std::getline(secret, options.admin_password)) {
    return Fail("--admin-password-file must name a file with the admin's password");
  }
  options.admin_password = std::string(absl::StripAsciiWhitespace(options.admin_password));
  options.targets = helpline::client::Targets::Local(base_port);
  for (int i = 1; i <= 5; ++i) {
    options.metrics_ports.push_back(metrics_base + i);
  }
  options.progress = [json](const std::string& line) {
    std::cerr << "\r" << line << (json ? "\n" : "") << std::flush;
  };
  signal(SIGINT, RequestStop);
  signal(SIGTERM, RequestStop);

  helpline::load::LoadGenerator load(options);
  std::cerr << "setting up " << options.experts << " experts in " << options.categories
            << " categories...\n";
  if (absl::Status s = load.Setup(); !s.ok()) {
    std::cerr << "helpline-load: setup failed: " << s << "\n";
    return 1;
  }
  helpline::load::LoadReport report = load.Run(duration, stop_requested);
  std::cerr << "\n";
  if (json) {
    std::cout << report.Json().dump() << "\n";
  } else {
    std::cout << report.Text();
  }
  return 0;
}
