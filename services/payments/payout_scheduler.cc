#include "services/payments/payout_scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "helpline/payments/v1/commands.pb.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/server/log.h"

namespace helpline::payments {

PayoutScheduler::PayoutScheduler(Options options, es::Front& front, const Clock& clock)
    : options_(std::move(options)),
      front_(front),
      clock_(clock),
      loop_("payout scheduler", std::min(options_.interval, absl::Seconds(10)), [this] {
        if (absl::Status sent = RunDue(clock_.Now()); !sent.ok()) {
          log::Warn("payout batch not run; trying again", {{"error", sent.ToString()}});
        }
      }) {}

absl::Status PayoutScheduler::RunDue(absl::Time now) {
  const int64_t bucket = absl::ToUnixSeconds(now) / absl::ToInt64Seconds(options_.interval);
  if (bucket == done_) return absl::OkStatus();
  v1::PaymentsCommand command;
  v1::RunPayoutBatch& batch = *command.mutable_run_payout_batch();
  batch.set_batch_id(absl::StrCat("batch-", bucket));
  batch.set_minimum_minor(options_.minimum_minor);
  *batch.mutable_refund_window() = ToProtoDuration(options_.refund_window);
  const std::string ledger = LedgerId(options_.currency);
  absl::Status sent = front_.Write(
      command, es::CommandOrigin::ByHelpline(
                   ledger, ids::DerivedCommandId(ledger, batch.batch_id()), "payments.payouts"));
  if (sent.ok()) done_ = bucket;
  return sent;
}

}  // namespace helpline::payments
