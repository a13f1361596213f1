#pragma once

#include <string>
#include <vector>

#include "services/runtime/kafka/client.h"
#include "tools/client/client.h"
#include "tools/events/event_records.h"
#include "tools/load/load_generator.h"

// What the chaos tests check after the platform ran journeys while its
// parts failed: the event streams themselves must show that nothing went
// wrong.
namespace helpline::chaos {

// One service's events, decoded, in partition and offset order.
struct ServiceEvents {
  std::string service;
  std::vector<events::DecodedEvent> events;
};

std::vector<ServiceEvents> ReadAllEvents(const kafka::ClientConfig& kafka,
                                         const std::string& prefix, int partitions);

// Waits (up to 3 minutes) for the reactions, timers and money of the last
// journeys, then checks: every help request and session ended and every
// bill settled; versions 1..N and unique event ids; every acknowledged
// write exactly once; every help request ended once; each session captured
// and refunded at most once, at its bill, split exactly; no expert in two
// sessions at once; the ledger reconciles with the processor's journal.
void ExpectJourneysHeldTogether(const kafka::ClientConfig& kafka, const std::string& prefix,
                                int partitions, const load::LoadReport& report,
                                client::Client& client, const std::string& admin_email,
                                const std::string& admin_password);

// The load the chaos tests run: 6 people, 6 experts, 3 journeys/s, each
// call retried for up to 2 minutes, as the platform's admin.
load::LoadOptions ChaosLoad(const client::Targets& targets, const std::string& run_tag);

// Waits up to 2 minutes for 3 more journeys to complete,
// printing the time, `change` and the count; false if they did not.
bool JourneysGoOnAfter(load::LoadGenerator& load, const std::string& change);

// What the read models answer about the people and experts of the run.
std::vector<std::string> AskReadModels(client::Client& client, const load::LoadReport& report);

// How long commands waited for their processor: from the front producing
// one (its latest send, when a client sent it again) to the reply committed
// for it, over every service's commands and replies topics; the longest is
// the longest a partition with a command waiting went without deciding.
struct CommandWaits {
  std::string service;
  int64_t commands = 0;
  double p99_ms = 0;
  double longest_ms = 0;
};
std::vector<CommandWaits> MeasureCommandWaits(const kafka::ClientConfig& kafka,
                                              const std::string& prefix, int partitions);

}  // namespace helpline::chaos
