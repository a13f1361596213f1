#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/payments.pb.h"
#include "services/runtime/core/paging.h"
#include "services/runtime/eventsourcing/event_feed.h"

namespace helpline::payments {

// Payments' read model: each ledger's state folded from its events (the
// same Apply the processor runs), every account's transfers, what each
// person spent and got back, and the intents the processor has not
// answered. Thread-safe.
class PaymentsReadModel : public es::Projection {
 public:
  // Earnings become available `refund_window` after they were captured.
  PaymentsReadModel(std::string currency, absl::Duration refund_window);

  void Apply(const google::protobuf::Message& event, const kafka::Record& record) override;

  std::vector<v1::ProcessorIntentRecorded> OpenIntents() const;
  v1::GetBalanceResponse BalanceOf(const std::string& user_id, absl::Time now) const;
  // Transfers on the user's payable and budget accounts, newest first.
  std::vector<v1::Transfer> TransfersOf(const std::string& user_id,
                                        const std::optional<paging::TimeKey>& after,
                                        size_t limit) const;
  // The whole state, copied (Reconcile).
  v1::PaymentsState State() const;
  std::optional<v1::PayoutStarted> OpenPayout(const std::string& payout_id) const;
  // Every account's balances summed up again from its transfers.
  absl::flat_hash_map<std::string, v1::LedgerAccount> Recomputed() const;
  // What the ledger moved that the processor must have moved too, by the
  // intent's id: "capture:<session>", "refund:<session>" (paid sessions),
  // "payout:<id>" (paid out) and "fund:<id>" (sponsor fundings).
  absl::flat_hash_map<std::string, int64_t> MovedAtProcessor() const;

 private:
  runtime::v1::Money Amount(int64_t minor) const;

  const std::string currency_;
  const absl::Duration refund_window_;
  mutable absl::Mutex mutex_;
  v1::PaymentsState state_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, std::vector<v1::Transfer>> history_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, int64_t> spent_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, int64_t> refunded_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, int64_t> moved_at_processor_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::payments
