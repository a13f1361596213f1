#include "services/runtime/eventsourcing/processor_metrics.h"

namespace helpline::es {

ProcessorMetrics::ProcessorMetrics(prometheus::Registry& registry, std::string consumer)
    : commands_(prometheus::BuildCounter()
                    .Name("helpline_processor_commands_total")
                    .Help("Commands the processor finished, by result")
                    .Register(registry)),
      transaction_seconds_(prometheus::BuildHistogram()
                               .Name("helpline_processor_transaction_seconds")
                               .Help("From a batch's first decide to its commit")
                               .Register(registry)
                               .Add({}, prometheus::Histogram::BucketBoundaries{
                                            0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
                                            0.5, 1, 2, 5})),
      batch_commands_(prometheus::BuildHistogram()
                          .Name("helpline_processor_batch_commands")
                          .Help("Commands per transaction")
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 5, 10, 20, 50,
                                                                           100, 200, 500, 1000})),
      transaction_failures_(prometheus::BuildCounter()
                                .Name("helpline_processor_transaction_failures_total")
                                .Help("Transactions that did not commit, by what followed")
                                .Register(registry)),
      recovery_seconds_(prometheus::BuildHistogram()
                            .Name("helpline_processor_recovery_seconds")
                            .Help("Time to rebuild a partition from snapshot and events")
                            .Register(registry)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120})),
      events_replayed_(prometheus::BuildCounter()
                           .Name("helpline_processor_events_replayed_total")
                           .Help("Events read back while rebuilding partitions")
                           .Register(registry)
                           .Add({})),
      commands_lag_(prometheus::BuildGauge()
                        .Name("helpline_processor_commands_lag")
                        .Help("Commands written to a partition and not yet handled (consumer lag)")
                        .Register(registry)),
      commands_lag_seconds_(prometheus::BuildGauge()
                                .Name("helpline_processor_commands_lag_seconds")
                                .Help("How long the oldest command not yet handled may have waited "
                                      "(an upper bound; 0 when none waits)")
                                .Register(registry)),
      unsettled_offsets_passed_(
          prometheus::BuildCounter()
              .Name("helpline_processor_unsettled_offsets_passed_total")
              .Help("Rebuilds that started from the group's last settled offsets because the "
                    "broker never settled a transaction's (decided commands are then answered "
                    "from the log)")
              .Register(registry)
              .Add({})),
      consumer_(std::move(consumer)),
      consumers_(registry) {
  consumers_.AddReader(consumer_);
  // From zero, so that the first failure is an increase Prometheus sees.
  for (const char* kind : {"aborted", "fatal", "coordinator_silent"}) {
    transaction_failures_.Add({{"kind", kind}});
  }
}

void ProcessorMetrics::CountCommand(const std::string& result) {
  commands_.Add({{"result", result}}).Increment();
  if (result == "dead_letter") consumers_.CountDeadLetter(consumer_, "undecodable");
  if (result == "refused") consumers_.CountDeadLetter(consumer_, "refused");
}

void ProcessorMetrics::ObserveTransaction(double seconds, int commands) {
  transaction_seconds_.Observe(seconds);
  batch_commands_.Observe(commands);
}

void ProcessorMetrics::CountTransactionFailure(const std::string& kind) {
  transaction_failures_.Add({{"kind", kind}}).Increment();
}

void ProcessorMetrics::CountUnsettledOffsetsPassed() { unsettled_offsets_passed_.Increment(); }

void ProcessorMetrics::ObserveRecovery(double seconds, int64_t events_replayed) {
  recovery_seconds_.Observe(seconds);
  events_replayed_.Increment(static_cast<double>(events_replayed));
}

void ProcessorMetrics::SetCommandsLag(int32_t partition, int64_t commands, absl::Duration behind) {
  const prometheus::Labels labels = {{"partition", std::to_string(partition)}};
  commands_lag_.Add(labels).Set(static_cast<double>(commands));
  commands_lag_seconds_.Add(labels).Set(absl::ToDoubleSeconds(behind));
}

void ProcessorMetrics::SetCommandsLagSeconds(int32_t partition, absl::Duration behind) {
  commands_lag_seconds_.Add({{"partition", std::to_string(partition)}})
      .Set(absl::ToDoubleSeconds(behind));
}

}  // namespace helpline::es
