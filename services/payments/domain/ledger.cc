#include "services/payments/domain/ledger.h"

#include <algorithm>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

using v1::TransferResult;

constexpr char kTimeoutPrefix[] = "timeout:";

bool Has(uint32_t flags, uint32_t flag) { return (flags & flag) != 0; }

bool IsPending(const v1::Transfer& transfer) {
  return Has(transfer.flags(), v1::TRANSFER_FLAG_PENDING);
}
bool IsPost(const v1::Transfer& transfer) {
  return Has(transfer.flags(), v1::TRANSFER_FLAG_POST_PENDING);
}
bool IsVoid(const v1::Transfer& transfer) {
  return Has(transfer.flags(), v1::TRANSFER_FLAG_VOID_PENDING);
}

bool AddOverflows(int64_t a, int64_t b) { return a > std::numeric_limits<int64_t>::max() - b; }

absl::Time ExpiresAt(const v1::Transfer& pending) {
  absl::Duration timeout = FromProtoDuration(pending.timeout());
  return timeout > absl::ZeroDuration() ? FromProtoTime(pending.timestamp()) + timeout
                                        : absl::InfiniteFuture();
}

// The same transfer, apart from what the ledger fills in.
bool SameRequest(const v1::Transfer& request, const v1::Transfer& taken) {
  v1::Transfer a = request;
  v1::Transfer b = taken;
  a.clear_timestamp();
  b.clear_timestamp();
  if (IsPost(a) || IsVoid(a)) {
    // A post or void names the pending transfer; accounts and amount may be left out.
    if (a.debit_account_id().empty()) a.set_debit_account_id(b.debit_account_id());
    if (a.credit_account_id().empty()) a.set_credit_account_id(b.credit_account_id());
    if (a.amount() == 0) a.set_amount(b.amount());
  }
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

}  // namespace

std::string TimeoutTransferId(const std::string& pending_id) {
  return absl::StrCat(kTimeoutPrefix, pending_id);
}

// What a chain changed, to put back if a later link fails.
struct Ledger::Undo {
  std::vector<std::pair<std::string, v1::LedgerAccount>> accounts;
  std::vector<std::pair<std::string, std::optional<v1::TakenTransfer>>> taken;

  void Save(const v1::LedgerState& state, const v1::Transfer& resolved) {
    for (const std::string& id : {resolved.debit_account_id(), resolved.credit_account_id()}) {
      accounts.emplace_back(id, state.accounts().at(id));
    }
    for (const std::string& id : {resolved.transfer_id(), resolved.pending_id()}) {
      if (id.empty()) continue;
      auto found = state.taken().find(id);
      taken.emplace_back(id, found == state.taken().end()
                                 ? std::nullopt
                                 : std::optional<v1::TakenTransfer>(found->second));
    }
  }

  void Restore(v1::LedgerState& state) {
    for (auto it = accounts.rbegin(); it != accounts.rend(); ++it) {
      (*state.mutable_accounts())[it->first] = it->second;
    }
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
      if (it->second) {
        (*state.mutable_taken())[it->first] = *it->second;
      } else {
        state.mutable_taken()->erase(it->first);
      }
    }
    accounts.clear();
    taken.clear();
  }
};

bool Ledger::OpenAccount(const std::string& account_id, uint32_t flags) {
  auto found = state_.accounts().find(account_id);
  if (found != state_.accounts().end()) return found->second.flags() == flags;
  v1::LedgerAccount& account = (*state_.mutable_accounts())[account_id];
  account.set_account_id(account_id);
  account.set_flags(flags);
  return true;
}

TransferResult Ledger::Check(const v1::Transfer& transfer, absl::Time now,
                             v1::Transfer* resolved) const {
  if (transfer.transfer_id().empty()) return v1::TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY;
  int kinds = IsPending(transfer) + IsPost(transfer) + IsVoid(transfer);
  if (kinds > 1) return v1::TRANSFER_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
  if (auto taken = state_.taken().find(transfer.transfer_id()); taken != state_.taken().end()) {
    return SameRequest(transfer, taken->second.transfer())
               ? v1::TRANSFER_RESULT_EXISTS
               : v1::TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_FIELDS;
  }
  *resolved = transfer;
  *resolved->mutable_timestamp() = ToProtoTime(now);
  if (IsPost(transfer) || IsVoid(transfer)) {
    auto found = state_.taken().find(transfer.pending_id());
    if (found == state_.taken().end() || !IsPending(found->second.transfer())) {
      return v1::TRANSFER_RESULT_PENDING_TRANSFER_NOT_FOUND;
    }
    const v1::Transfer& pending = found->second.transfer();
    switch (found->second.outcome()) {
      case v1::PENDING_OUTCOME_POSTED:
        return v1::TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED;
      case v1::PENDING_OUTCOME_VOIDED:
        return v1::TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_VOIDED;
      case v1::PENDING_OUTCOME_EXPIRED:
        return v1::TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED;
      default:
        break;
    }
    // Past its timeout a pending transfer can only be voided (the timeout's own void).
    if (IsPost(transfer) && now >= ExpiresAt(pending)) {
      return v1::TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED;
    }
    if ((!transfer.debit_account_id().empty() &&
         transfer.debit_account_id() != pending.debit_account_id()) ||
        (!transfer.credit_account_id().empty() &&
         transfer.credit_account_id() != pending.credit_account_id())) {
      return v1::TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_FIELDS;
    }
    if (transfer.amount() < 0) return v1::TRANSFER_RESULT_AMOUNT_MUST_BE_POSITIVE;
    if (transfer.amount() > pending.amount() ||
        (IsVoid(transfer) && transfer.amount() != 0 && transfer.amount() != pending.amount())) {
      return v1::TRANSFER_RESULT_EXCEEDS_PENDING_AMOUNT;
    }
    resolved->set_debit_account_id(pending.debit_account_id());
    resolved->set_credit_account_id(pending.credit_account_id());
    if (IsVoid(transfer) || transfer.amount() == 0) resolved->set_amount(pending.amount());
    return v1::TRANSFER_RESULT_OK;
  }
  if (transfer.debit_account_id() == transfer.credit_account_id()) {
    return v1::TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT;
  }
  auto debit = state_.accounts().find(transfer.debit_account_id());
  if (debit == state_.accounts().end()) return v1::TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND;
  auto credit = state_.accounts().find(transfer.credit_account_id());
  if (credit == state_.accounts().end()) return v1::TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND;
  if (transfer.amount() <= 0) return v1::TRANSFER_RESULT_AMOUNT_MUST_BE_POSITIVE;
  if (!IsPending(transfer) && FromProtoDuration(transfer.timeout()) != absl::ZeroDuration()) {
    return v1::TRANSFER_RESULT_TIMEOUT_RESERVED_FOR_PENDING;
  }
  const v1::LedgerAccount& d = debit->second;
  const v1::LedgerAccount& c = credit->second;
  const int64_t amount = transfer.amount();
  if (AddOverflows(d.debits_pending(), d.debits_posted()) ||
      AddOverflows(d.debits_pending() + d.debits_posted(), amount) ||
      AddOverflows(c.credits_pending(), c.credits_posted()) ||
      AddOverflows(c.credits_pending() + c.credits_posted(), amount)) {
    return v1::TRANSFER_RESULT_OVERFLOW;
  }
  if (Has(d.flags(), v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
      d.debits_pending() + d.debits_posted() + amount > d.credits_posted()) {
    return v1::TRANSFER_RESULT_EXCEEDS_CREDITS;
  }
  if (Has(c.flags(), v1::ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
      c.credits_pending() + c.credits_posted() + amount > c.debits_posted()) {
    return v1::TRANSFER_RESULT_EXCEEDS_DEBITS;
  }
  return v1::TRANSFER_RESULT_OK;
}

std::vector<TransferResult> Ledger::CreateTransfers(const std::vector<v1::Transfer>& transfers,
                                                    absl::Time now,
                                                    std::vector<v1::Transfer>* taken) {
  std::vector<TransferResult> results(transfers.size(), v1::TRANSFER_RESULT_UNSPECIFIED);
  size_t chain_start = 0;
  size_t taken_at_chain_start = taken->size();
  Undo undo;
  bool chain_failed = false;
  for (size_t i = 0; i < transfers.size(); ++i) {
    const v1::Transfer& transfer = transfers[i];
    const bool linked = Has(transfer.flags(), v1::TRANSFER_FLAG_LINKED);
    v1::Transfer resolved;
    TransferResult result = chain_failed ? v1::TRANSFER_RESULT_LINKED_EVENT_FAILED
                                         : Check(transfer, now, &resolved);
    if (linked && i + 1 == transfers.size()) result = v1::TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN;
    results[i] = result;
    if (result == v1::TRANSFER_RESULT_OK) {
      undo.Save(state_, resolved);
      ApplyTaken(state_, resolved);
      taken->push_back(resolved);
    } else if (result != v1::TRANSFER_RESULT_EXISTS && !chain_failed) {
      chain_failed = true;
      // Everything before in this chain fails with it.
      undo.Restore(state_);
      taken->resize(taken_at_chain_start);
      for (size_t j = chain_start; j < i; ++j) results[j] = v1::TRANSFER_RESULT_LINKED_EVENT_FAILED;
    }
    if (!linked) {
      // The chain (or the single transfer) ends here.
      chain_start = i + 1;
      taken_at_chain_start = taken->size();
      undo = Undo();
      chain_failed = false;
    }
  }
  return results;
}

void Ledger::ApplyTaken(v1::LedgerState& state, const v1::Transfer& transfer) {
  auto& accounts = *state.mutable_accounts();
  v1::LedgerAccount& debit = accounts[transfer.debit_account_id()];
  v1::LedgerAccount& credit = accounts[transfer.credit_account_id()];
  v1::TakenTransfer& record = (*state.mutable_taken())[transfer.transfer_id()];
  *record.mutable_transfer() = transfer;
  if (IsPost(transfer) || IsVoid(transfer)) {
    v1::TakenTransfer& pending = (*state.mutable_taken())[transfer.pending_id()];
    int64_t reserved = pending.transfer().amount();
    debit.set_debits_pending(debit.debits_pending() - reserved);
    credit.set_credits_pending(credit.credits_pending() - reserved);
    if (IsPost(transfer)) {
      debit.set_debits_posted(debit.debits_posted() + transfer.amount());
      credit.set_credits_posted(credit.credits_posted() + transfer.amount());
      pending.set_outcome(v1::PENDING_OUTCOME_POSTED);
    } else {
      pending.set_outcome(absl::StartsWith(transfer.transfer_id(), kTimeoutPrefix)
                              ? v1::PENDING_OUTCOME_EXPIRED
                              : v1::PENDING_OUTCOME_VOIDED);
    }
    return;
  }
  if (IsPending(transfer)) {
    debit.set_debits_pending(debit.debits_pending() + transfer.amount());
    credit.set_credits_pending(credit.credits_pending() + transfer.amount());
    record.set_outcome(v1::PENDING_OUTCOME_OPEN);
  } else {
    debit.set_debits_posted(debit.debits_posted() + transfer.amount());
    credit.set_credits_posted(credit.credits_posted() + transfer.amount());
  }
}

std::vector<std::string> Ledger::Expired(absl::Time now) const {
  std::vector<std::pair<absl::Time, std::string>> due;
  for (const auto& [id, taken] : state_.taken()) {
    if (taken.outcome() != v1::PENDING_OUTCOME_OPEN) continue;
    absl::Time expires = ExpiresAt(taken.transfer());
    if (expires <= now) due.emplace_back(expires, id);
  }
  std::sort(due.begin(), due.end());
  std::vector<std::string> ids;
  for (auto& [when, id] : due) ids.push_back(std::move(id));
  return ids;
}

std::optional<absl::Time> Ledger::NextTimeout() const {
  std::optional<absl::Time> next;
  for (const auto& [id, taken] : state_.taken()) {
    if (taken.outcome() != v1::PENDING_OUTCOME_OPEN) continue;
    absl::Time expires = ExpiresAt(taken.transfer());
    if (expires != absl::InfiniteFuture() && (!next || expires < *next)) next = expires;
  }
  return next;
}

void Ledger::ForgetBefore(v1::LedgerState& state, absl::Time cutoff) {
  auto& taken = *state.mutable_taken();
  for (auto it = taken.begin(); it != taken.end();) {
    if (it->second.outcome() != v1::PENDING_OUTCOME_OPEN &&
        FromProtoTime(it->second.transfer().timestamp()) < cutoff) {
      it = taken.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t Ledger::PostedBalance(const v1::LedgerAccount& account) {
  return account.credits_posted() - account.debits_posted();
}

int64_t Ledger::BalanceWithPending(const v1::LedgerAccount& account) {
  return account.credits_posted() + account.credits_pending() - account.debits_posted() -
         account.debits_pending();
}

}  // namespace helpline::payments
