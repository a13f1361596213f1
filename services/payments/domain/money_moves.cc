#include "services/payments/domain/money_moves.h"

#include <algorithm>

#include "services/payments/domain/ledger.h"
#include "services/payments/domain/payments_domain.h"

namespace helpline::payments {

v1::Transfer Move(const std::string& id, const std::string& debit, const std::string& credit,
                  int64_t amount, uint32_t flags, const std::string& reference) {
  v1::Transfer transfer;
  transfer.set_transfer_id(id);
  transfer.set_debit_account_id(debit);
  transfer.set_credit_account_id(credit);
  transfer.set_amount(amount);
  transfer.set_flags(flags);
  transfer.set_reference(reference);
  return transfer;
}

v1::Transfer Settle(const std::string& id, const std::string& pending_id, int64_t amount,
                    const std::string& reference) {
  v1::Transfer transfer;
  transfer.set_transfer_id(id);
  transfer.set_pending_id(pending_id);
  // Posting nothing is voiding (a post of 0 would take all of it).
  transfer.set_flags(amount > 0 ? v1::TRANSFER_FLAG_POST_PENDING : v1::TRANSFER_FLAG_VOID_PENDING);
  transfer.set_amount(amount);
  transfer.set_reference(reference);
  return transfer;
}

void Attempt::Copy(const std::string& account_id) {
  if (account_id.empty()) return;
  auto found = full.accounts().find(account_id);
  if (found != full.accounts().end()) {
    (*ledger_state.mutable_accounts())[account_id] = found->second;
  }
}

void Attempt::CopyTaken(const std::string& transfer_id) {
  if (transfer_id.empty()) return;
  auto found = full.taken().find(transfer_id);
  if (found == full.taken().end()) return;
  (*ledger_state.mutable_taken())[transfer_id] = found->second;
  Copy(found->second.transfer().debit_account_id());
  Copy(found->second.transfer().credit_account_id());
}

bool Attempt::Take(std::vector<v1::Transfer> transfers, absl::Time now) {
  for (const v1::Transfer& transfer : transfers) {
    Copy(transfer.debit_account_id());
    Copy(transfer.credit_account_id());
    CopyTaken(transfer.transfer_id());
    CopyTaken(transfer.pending_id());
  }
  Ledger ledger(ledger_state);
  for (const v1::Transfer& transfer : transfers) {
    for (const std::string& id : {transfer.debit_account_id(), transfer.credit_account_id()}) {
      if (!id.empty()) ledger.OpenAccount(id, FlagsFor(id));
    }
  }
  results = ledger.CreateTransfers(transfers, now, &taken);
  for (v1::TransferResult result : results) {
    if (result != v1::TRANSFER_RESULT_OK) return false;
  }
  return true;
}

std::string FirstProblem(const Attempt& attempt) {
  for (v1::TransferResult result : attempt.results) {
    if (result != v1::TRANSFER_RESULT_OK && result != v1::TRANSFER_RESULT_LINKED_EVENT_FAILED) {
      return v1::TransferResult_Name(result);
    }
  }
  return "TRANSFER_RESULT_UNSPECIFIED";
}

v1::PaymentsEvent Intent(const std::string& id, v1::IntentKind kind,
                         const runtime::v1::Money& amount, const std::string& reference,
                         const std::string& authorisation_id) {
  v1::PaymentsEvent event;
  v1::ProcessorIntentRecorded& intent = *event.mutable_processor_intent_recorded();
  intent.set_intent_id(id);
  intent.set_kind(kind);
  *intent.mutable_amount() = amount;
  intent.set_reference(reference);
  intent.set_authorisation_id(authorisation_id);
  return event;
}

runtime::v1::Money Minor(const std::string& currency, int64_t amount) {
  runtime::v1::Money money;
  money.set_currency_code(currency);
  money.set_amount_minor(amount);
  return money;
}

const v1::LedgerAccount* AccountOf(const v1::PaymentsState& state, const std::string& id) {
  auto found = state.ledger().accounts().find(id);
  return found == state.ledger().accounts().end() ? nullptr : &found->second;
}

int64_t Owed(const v1::PaymentsState& state, const std::string& expert_id) {
  const v1::LedgerAccount* owed = AccountOf(state, ExpertOwed(expert_id));
  return owed == nullptr ? 0 : std::max<int64_t>(0, owed->debits_posted() - owed->credits_posted());
}

int64_t Spendable(const v1::PaymentsState& state, const std::string& expert_id) {
  const v1::LedgerAccount* payable = AccountOf(state, ExpertPayable(expert_id));
  return payable == nullptr ? 0
                            : payable->credits_posted() - payable->debits_posted() -
                                  payable->debits_pending();
}

void ApplyTransfers(v1::PaymentsState& state,
                    const google::protobuf::RepeatedPtrField<v1::Transfer>& transfers) {
  for (const v1::Transfer& transfer : transfers) {
    for (const std::string& id : {transfer.debit_account_id(), transfer.credit_account_id()}) {
      Ledger(*state.mutable_ledger()).OpenAccount(id, FlagsFor(id));
    }
    Ledger::ApplyTaken(*state.mutable_ledger(), transfer);
  }
}

bool IntentKnown(const v1::PaymentsState& state, const std::string& intent_id) {
  return state.open_intents().contains(intent_id) || state.settled_intents().contains(intent_id);
}

}  // namespace helpline::payments
