#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/kafka/client.h"

namespace helpline::replay {

// What one service recorded: per partition, the commands its processor
// decided (up to its committed offset) and the events it wrote, each in
// topic order. Commands and events are co-partitioned.
struct RecordedLog {
  // "sessions" with any test prefix ("chaos.sessions"): the processor's
  // name, which timers carry as their actor ("<service>.timer").
  std::string service;
  const es::AggregateType* type = nullptr;
  std::map<int32_t, std::vector<kafka::Record>> commands;
  std::map<int32_t, std::vector<kafka::Record>> events;
  // The processor's dedupe window (the command ids an aggregate remembers).
  absl::Duration dedupe_window = absl::Hours(24);
  // Events written before event ids were derived from what the event is
  // (they were random) are compared without their ids.
  bool ignore_event_ids = false;
};

// The first event where re-deciding differs from the record.
struct Divergence {
  int32_t partition = 0;
  int64_t offset = -1;  // of the recorded event (-1: the record has none)
  std::string aggregate_id;
  std::string command_id;
  std::string what;  // what differs, in words
  std::string recorded;  // the recorded event (text format), if any
  std::string replayed;  // the re-decided event (text format), if any
};

struct ReplayReport {
  std::string service;
  int64_t commands = 0;  // commands decided again
  int64_t timers = 0;  // timer firings decided again
  int64_t events_reproduced = 0;  // recorded events that re-deciding wrote the same
  // Recorded events whose commands the commands topic no longer holds:
  // applied as recorded, not checked.
  int64_t events_applied_unchecked = 0;
  // The first divergence of each partition; a partition stops at its first.
  std::vector<Divergence> divergences;
  absl::Duration took;  // deciding and comparing, reading excluded
};

// Re-decides `log` in process with the service's own Decide and Apply: each
// command at the time its recorded events carry (a command without events
// at the later of its record's time and the previous decision's), each
// timer at the time its events carry, every event checked field by field
// against the record. Nothing is written anywhere.
ReplayReport Replay(const RecordedLog& log);

}  // namespace helpline::replay
