#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/payments.pb.h"
#include "helpline/payments/v1/state.pb.h"
#include "services/payments/domain/sponsor_burn_down.h"
#include "services/runtime/core/paging.h"
#include "services/runtime/eventsourcing/projection.h"

namespace helpline::payments {

// What needs a person's attention, counted (metrics): sessions by money
// state (CAPTURE_FAILED, REFUND_FAILED, CAPTURING, REFUNDING, UNPAID) and
// experts who OWE refunds back, with the amounts in minor units.
struct MoneyFigures {
  absl::flat_hash_map<std::string, int64_t> count;
  absl::flat_hash_map<std::string, int64_t> amount_minor;
};

// Payments' read model: each ledger's state folded from its events (the
// same Apply the processor runs), every account's transfers, what each
// person spent, got back and owes, every account's balances summed again
// from its transfers, and the money that needs a person's attention. Every
// figure is kept up to date as events arrive, so no query walks the
// history. Thread-safe.
class PaymentsReadModel : public es::TypedProjection<v1::PaymentsEvent> {
 public:
  // Earnings become available `refund_window` after they were captured.
  PaymentsReadModel(std::string currency, absl::Duration refund_window);

  void Apply(const v1::PaymentsEvent& event) override;

  std::vector<v1::ProcessorIntentRecorded> OpenIntents() const;
  v1::GetBalanceResponse BalanceOf(const std::string& user_id, absl::Time now) const;
  // Transfers on the user's payable and budget accounts, newest first.
  std::vector<v1::Transfer> TransfersOf(const std::string& user_id,
                                        const std::optional<paging::TimeKey>& after,
                                        size_t limit) const;
  std::optional<v1::PayoutStarted> OpenPayout(const std::string& payout_id) const;
  std::optional<v1::SessionMoney> SessionMoney(const std::string& session_id) const;

  // The ledger's accounts as it keeps them, and the same accounts summed
  // up again from their transfers, at one moment (Reconcile compares them).
  struct Balances {
    absl::flat_hash_map<std::string, v1::LedgerAccount> accounts;
    absl::flat_hash_map<std::string, v1::LedgerAccount> recomputed;
  };
  Balances AccountsAndRecomputed() const;

  // What the ledger moved that the processor must have moved too, by the
  // intent's id: "capture:<session>", "refund:<session>[/<attempt>]" (paid
  // sessions), "payout:<id>" (paid out) and "fund:<id>" (sponsor fundings).
  // The amount the ledger has for one (nullopt: none) and whether its
  // intent is still open, at one moment; and how many there are.
  struct LedgerSide {
    std::optional<int64_t> amount;
    bool open = false;
  };
  LedgerSide MovedAtProcessor(const std::string& intent_id) const;
  size_t MovedAtProcessorCount() const;
  // Those of them recorded before `mark` (MovedAtProcessorMark() then)
  // that are not in `seen`: walks them all, so called only when the counts
  // say some are missing.
  uint64_t MovedAtProcessorMark() const;
  std::vector<std::string> MovedAtProcessorExcept(const absl::flat_hash_set<std::string>& seen,
                                                  uint64_t mark) const;

  std::vector<v1::MoneyAttention> Attention() const;
  MoneyFigures Figures() const;
  // Every sponsor program's budget burning down, as of `now`.
  std::vector<SponsorProgramBurn> SponsorPrograms(absl::Time now) const;

 private:
  runtime::v1::Money Amount(int64_t minor) const;
  void Record(const v1::Transfer& transfer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void UpdateAttention(const std::string& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string currency_;
  const absl::Duration refund_window_;
  mutable absl::Mutex mutex_;
  v1::PaymentsState state_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, std::vector<v1::Transfer>> history_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, v1::LedgerAccount> recomputed_ ABSL_GUARDED_BY(mutex_);
  // Pending transfers not posted or voided yet, by id (their amounts).
  absl::flat_hash_map<std::string, v1::Transfer> open_pending_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, int64_t> spent_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, int64_t> refunded_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, int64_t> owed_by_person_ ABSL_GUARDED_BY(mutex_);
  // Per sponsor budget account: refunds credited back to it.
  absl::flat_hash_map<std::string, int64_t> given_back_ ABSL_GUARDED_BY(mutex_);
  SponsorBurnDown sponsors_ ABSL_GUARDED_BY(mutex_);
  struct Moved {
    int64_t amount = 0;
    uint64_t recorded = 0;  // its place in the order they were recorded
  };
  absl::flat_hash_map<std::string, Moved> moved_at_processor_ ABSL_GUARDED_BY(mutex_);
  uint64_t moved_recorded_ ABSL_GUARDED_BY(mutex_) = 0;
  void AddMoved(const std::string& intent_id, int64_t amount) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // By subject ("session:<id>", "expert:<id>").
  absl::flat_hash_map<std::string, v1::MoneyAttention> attention_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::payments
