#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/whatif/simulation.h"

// The what-if report: the recorded outcome, the recorded policy simulated,
// and another policy simulated, side by side; as a table for people or JSON
// for scripts (docs/whatif.md).
namespace helpline::whatif {

struct Report {
  Window window;
  int64_t events = 0;
  uint64_t seed = 0;  // run i's draws use seed + i, under both policies
  std::string currency;
  Policy recorded_policy;
  Policy what_if_policy;
  Outcome recorded;
  // One outcome per run; the report shows each figure's median over them.
  std::vector<Outcome> simulated_recorded_policy;
  std::vector<Outcome> simulated_what_if;
  // The experts compared: everyone ever online, offered or booked.
  std::vector<std::string> experts;
  std::vector<std::string> assumptions;
};

std::string ReportTable(const Report& report);
std::string ReportJson(const Report& report);

}  // namespace helpline::whatif
