#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/payments.grpc.pb.h"
#include "helpline/payments/v1/processor.grpc.pb.h"
#include "services/payments/domain/read_model.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/front.h"

namespace helpline::payments {

struct PaymentsOptions {
  std::string currency = "EUR";
  // Where Reconcile reads the processor's journal.
  // The payment processor (its journal, for Reconcile).
  std::shared_ptr<grpc::Channel> processor_channel;
  absl::Duration command_timeout = absl::Seconds(10);
  int64_t payout_minimum_minor = 1000;
  absl::Duration refund_window = absl::Hours(72);
};

// Reconcile reads the processor's journal this many entries a call.
inline constexpr int32_t kJournalPageSize = 5000;

struct PaymentsParts {
  es::Front& front;
  PaymentsReadModel& read_model;
  auth::CallGuard& guard;
  const Clock& clock;
};

// The PaymentsService API over the read model; FundSponsorBudget records
// an intent the worker executes.
class PaymentsService final : public v1::PaymentsService::Service {
 public:
  PaymentsService(PaymentsOptions options, PaymentsParts parts);

  grpc::Status FundSponsorBudget(grpc::ServerContext* context,
                                 const v1::FundSponsorBudgetRequest* request,
                                 v1::FundSponsorBudgetResponse* response) override;
  grpc::Status GetBalance(grpc::ServerContext* context, const v1::GetBalanceRequest* request,
                          v1::GetBalanceResponse* response) override;
  grpc::Status ListTransfers(grpc::ServerContext* context, const v1::ListTransfersRequest* request,
                             v1::ListTransfersResponse* response) override;
  grpc::Status RequestPayout(grpc::ServerContext* context, const v1::RequestPayoutRequest* request,
                             v1::RequestPayoutResponse* response) override;
  grpc::Status Reconcile(grpc::ServerContext* context, const v1::ReconcileRequest* request,
                         v1::ReconcileResponse* response) override;
  grpc::Status RetryRefund(grpc::ServerContext* context, const v1::RetryRefundRequest* request,
                           v1::RetryRefundResponse* response) override;

 private:
  const PaymentsOptions options_;
  PaymentsParts parts_;
  std::unique_ptr<v1::SandboxProcessorService::Stub> processor_;
};

}  // namespace helpline::payments
