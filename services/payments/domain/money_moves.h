#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/state.pb.h"

// The pieces payments' decisions are made of (payments_domain.cc,
// session_money.cc, payouts.cc, sponsor_budgets.cc): ledger transfers, a
// working copy of the ledger to try them on, processor intents, and what an
// expert's accounts can give.
namespace helpline::payments {

using Events = std::vector<v1::PaymentsEvent>;

// A single-phase or pending transfer of `amount` from `debit` to `credit`.
v1::Transfer Move(const std::string& id, const std::string& debit, const std::string& credit,
                  int64_t amount, uint32_t flags, const std::string& reference);
// Posts `amount` of the pending transfer `pending_id` (voids it when 0).
v1::Transfer Settle(const std::string& id, const std::string& pending_id, int64_t amount,
                    const std::string& reference);

// A working copy of the ledger for decide, holding only what the
// transfers touch (their accounts and ids, and the pending transfers they
// settle), so a decision costs the same however large the ledger grows:
// opens the accounts the transfers need, takes them, and says whether all
// were taken.
struct Attempt {
  explicit Attempt(const v1::PaymentsState& state) : full(state.ledger()) {}

  bool Take(std::vector<v1::Transfer> transfers, absl::Time now);

  const v1::LedgerState& full;
  v1::LedgerState ledger_state;
  std::vector<v1::Transfer> taken;
  std::vector<v1::TransferResult> results;

 private:
  void Copy(const std::string& account_id);
  void CopyTaken(const std::string& transfer_id);
};

// Why `attempt` was refused: its first result other than OK and
// LINKED_EVENT_FAILED (which only says another transfer of the chain failed).
std::string FirstProblem(const Attempt& attempt);

// ProcessorIntentRecorded: something for the worker to do at the processor.
v1::PaymentsEvent Intent(const std::string& id, v1::IntentKind kind,
                         const runtime::v1::Money& amount, const std::string& reference,
                         const std::string& authorisation_id = "");

runtime::v1::Money Minor(const std::string& currency, int64_t amount);

const v1::LedgerAccount* AccountOf(const v1::PaymentsState& state, const std::string& id);
// What the expert owes back from refunds after payouts.
int64_t Owed(const v1::PaymentsState& state, const std::string& expert_id);
// What the expert's payable can still give: posted, less payouts on their way.
int64_t Spendable(const v1::PaymentsState& state, const std::string& expert_id);

// Posts transfers an event took into `state`'s ledger, opening their accounts.
void ApplyTransfers(v1::PaymentsState& state,
                    const google::protobuf::RepeatedPtrField<v1::Transfer>& transfers);

// A charge or payout intent recorded before (open, or answered at any
// time): a retry of its command, even after the dedupe window, does
// nothing.
bool IntentKnown(const v1::PaymentsState& state, const std::string& intent_id);

}  // namespace helpline::payments
