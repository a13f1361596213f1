#include "services/payments/intent_worker.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "helpline/payments/v1/processor.grpc.pb.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/server/log.h"

namespace helpline::payments {
namespace {

class GrpcSandboxProcessor : public PaymentProcessor {
 public:
  explicit GrpcSandboxProcessor(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::SandboxProcessorService::NewStub(std::move(channel))) {}

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

std::unique_ptr<PaymentProcessor> SandboxProcessorClient(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcSandboxProcessor>(std::move(channel));
}

IntentWorker::IntentWorker(Options options, PaymentProcessor& processor, OpenIntents open_intents,
                           Report report, IntentMetrics* metrics)
    : options_(options),
      processor_(processor),
      open_intents_(std::move(open_intents)),
      report_(std::move(report)),
      metrics_(metrics) {}

namespace {

// A session's operations run at the processor in this order: a refund only
// after its capture went through, a capture only after the authorisation.
int StepOf(v1::IntentKind kind) {
  switch (kind) {
    case v1::INTENT_KIND_AUTHORISE:
      return 0;
    case v1::INTENT_KIND_REFUND:
      return 2;
    default:
      return 1;
  }
}

}  // namespace

int IntentWorker::RunOnce(absl::Time now) {
  int reported = 0;
  absl::flat_hash_map<std::string, absl::Time> still_open;
  std::vector<v1::ProcessorIntentRecorded> intents = open_intents_();
  absl::flat_hash_map<std::string, absl::Time> open_since;
  absl::Duration oldest;
  for (const v1::ProcessorIntentRecorded& intent : intents) {
    auto seen = open_since_.find(intent.intent_id());
    const absl::Time since = seen != open_since_.end() ? seen->second : now;
    open_since[intent.intent_id()] = since;
    oldest = std::max(oldest, now - since);
  }
  open_since_ = std::move(open_since);
  if (metrics_ != nullptr) metrics_->SetBacklog(intents.size(), oldest);
  std::sort(intents.begin(), intents.end(), [](const auto& a, const auto& b) {
    return std::make_tuple(a.reference(), StepOf(a.kind()), a.intent_id()) <
           std::make_tuple(b.reference(), StepOf(b.kind()), b.intent_id());
  });
  // References with an earlier step still open after this pass.
  absl::flat_hash_set<std::string> waiting;
  for (const v1::ProcessorIntentRecorded& intent : intents) {
    if (waiting.contains(intent.reference())) continue;
    waiting.insert(intent.reference());
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
    if (metrics_ != nullptr) {
      metrics_->CountCall(intent.kind(), !answer.ok()       ? "no_answer"
                                         : answer->approved() ? "approved"
                                                              : "declined");
    }
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
    // Done at the processor: the session's next step may go in this pass.
    if (StepOf(intent.kind()) < 2) waiting.erase(intent.reference());
  }
  tried_ = std::move(still_open);
  return reported;
}

}  // namespace helpline::payments
