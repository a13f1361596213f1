#include "services/payments/intent_worker.h"

#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "helpline/payments/v1/processor.grpc.pb.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/server/log.h"

namespace helpline::payments {
namespace {

class GrpcSandboxProcessor : public PaymentProcessor {
 public:
  explicit GrpcSandboxProcessor(const std::string& target)
      : stub_(v1::SandboxProcessorService::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {}

  absl::StatusOr<v1::ExecuteResponse> Execute(const v1::ExecuteRequest& request,
                                              absl::Duration timeout) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    v1::ExecuteResponse response;
    grpc::Status status = stub_->Execute(&context, request, &response);
    if (!status.ok()) return errors::FromGrpc(status);
    return response;
  }

 private:
  std::unique_ptr<v1::SandboxProcessorService::Stub> stub_;
};

}  // namespace

std::unique_ptr<PaymentProcessor> SandboxProcessorClient(const std::string& target) {
  return std::make_unique<GrpcSandboxProcessor>(target);
}

IntentWorker::IntentWorker(Options options, PaymentProcessor& processor, OpenIntents open_intents,
                           Report report)
    : options_(options),
      processor_(processor),
      open_intents_(std::move(open_intents)),
      report_(std::move(report)) {}

int IntentWorker::RunOnce(absl::Time now) {
  int reported = 0;
  absl::flat_hash_map<std::string, absl::Time> still_open;
  for (const v1::ProcessorIntentRecorded& intent : open_intents_()) {
    auto tried = tried_.find(intent.intent_id());
    if (tried != tried_.end() && now < tried->second + options_.retry_after) {
      still_open.insert(*tried);
      continue;
    }
    still_open[intent.intent_id()] = now;
    v1::ExecuteRequest request;
    request.set_idempotency_key(intent.intent_id());
    request.set_kind(intent.kind());
    *request.mutable_amount() = intent.amount();
    request.set_reference(intent.reference());
    request.set_authorisation_key(intent.authorisation_id());
    absl::StatusOr<v1::ExecuteResponse> answer = processor_.Execute(request, options_.call_timeout);
    if (!answer.ok()) {
      log::Warn("the processor did not answer; trying again later",
                {{"intent_id", intent.intent_id()}, {"error", answer.status().ToString()}});
      continue;
    }
    v1::RecordProcessorOutcome outcome;
    outcome.set_intent_id(intent.intent_id());
    outcome.set_outcome(answer->approved() ? v1::INTENT_OUTCOME_SUCCEEDED
                                           : v1::INTENT_OUTCOME_DECLINED);
    outcome.set_detail(answer->approved() ? answer->processor_reference()
                                          : answer->decline_reason());
    if (absl::Status sent = report_(outcome); !sent.ok()) {
      log::Warn("outcome not recorded; the intent is tried again",
                {{"intent_id", intent.intent_id()}, {"error", sent.ToString()}});
      continue;
    }
    ++reported;
  }
  tried_ = std::move(still_open);
  return reported;
}

}  // namespace helpline::payments
