// helpline-events: follow or export Helpline's event streams as JSON lines
// or CSV, for analysts and for anyone debugging a journey.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <iostream>

#include "tools/events/events_tool.h"

namespace {

std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      std::find(args.begin(), args.end(), "--help") != args.end()) {
    std::cout << helpline::events::kToolUsage;
    return args.empty() ? 2 : 0;
  }
  absl::StatusOr<helpline::events::ToolOptions> options = helpline::events::ParseToolArgs(args);
  if (!options.ok()) {
    std::cerr << "helpline-events: " << options.status().message()
              << "\n(see helpline-events --help)\n";
    return 2;
  }
  signal(SIGINT, RequestStop);
  signal(SIGTERM, RequestStop);
  signal(SIGPIPE, SIG_IGN);

  std::ofstream file;
  if (!options->output_file.empty()) {
    file.open(options->output_file, std::ios::out | std::ios::trunc);
    if (!file) {
      std::cerr << "helpline-events: cannot write " << options->output_file << "\n";
      return 1;
    }
  }
  std::ostream& out = options->output_file.empty() ? std::cout : file;
  absl::StatusOr<helpline::events::ToolSummary> summary =
      helpline::events::RunTool(*options, out, std::cerr, stop_requested);
  if (!summary.ok()) {
    std::cerr << "helpline-events: " << summary.status().message() << "\n";
    return 1;
  }
  std::cerr << "helpline-events: " << summary->written << " events written";
  if (summary->undecodable > 0) std::cerr << ", " << summary->undecodable << " undecodable skipped";
  std::cerr << "\n";
  return 0;
}
