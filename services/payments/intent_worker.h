#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/processor.pb.h"
#include "services/payments/money_metrics.h"

namespace helpline::payments {

// The payment processor as payments calls it (docs/architecture.md §6): one call per
// operation, the idempotency key making a retry harmless.
class PaymentProcessor {
 public:
  virtual ~PaymentProcessor() = default;
  // DEADLINE_EXCEEDED or UNAVAILABLE: try again later with the same key.
  virtual absl::StatusOr<v1::ExecuteResponse> Execute(const v1::ExecuteRequest& request,
                                                      absl::Duration timeout) = 0;
};

// The sandbox processor process over gRPC.
std::unique_ptr<PaymentProcessor> SandboxProcessorClient(std::shared_ptr<grpc::Channel> channel);

// Executes the intents payments recorded, outside decide: each open intent
// goes to the processor with the intent id as idempotency key, and the
// answer comes back as a RecordProcessorOutcome command (which ignores a
// second answer). A call that times out is tried again after `retry_after`.
class IntentWorker {
 public:
  struct Options {
    absl::Duration call_timeout = absl::Seconds(5);
    absl::Duration retry_after = absl::Seconds(2);
  };
  using OpenIntents = std::function<std::vector<v1::ProcessorIntentRecorded>()>;
  using Report = std::function<absl::Status(const v1::RecordProcessorOutcome&)>;

  IntentWorker(Options options, PaymentProcessor& processor, OpenIntents open_intents,
               Report report, IntentMetrics* metrics = nullptr);

  // One pass at `now`; the number of outcomes reported.
  int RunOnce(absl::Time now);

 private:
  const Options options_;
  PaymentProcessor& processor_;
  OpenIntents open_intents_;
  Report report_;
  IntentMetrics* const metrics_;
  // When an intent was last tried, to space out the retries.
  absl::flat_hash_map<std::string, absl::Time> tried_;
  // When this worker first saw each open intent.
  absl::flat_hash_map<std::string, absl::Time> open_since_;
};

}  // namespace helpline::payments
