#include "services/payments/domain/read_model.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "services/payments/domain/ledger.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

bool Has(uint32_t flags, uint32_t flag) { return (flags & flag) != 0; }

}  // namespace

PaymentsReadModel::PaymentsReadModel(std::string currency, absl::Duration refund_window)
    : currency_(std::move(currency)), refund_window_(refund_window) {}

void PaymentsReadModel::Apply(const google::protobuf::Message& message, const kafka::Record&) {
  const auto& event = static_cast<const v1::PaymentsEvent&>(message);
  if (event.meta().aggregate_id() != LedgerId(currency_)) return;
  absl::MutexLock lock(&mutex_);
  int64_t payout_amount = 0;
  if (event.has_payout_settled()) {
    auto open = state_.open_payouts().find(event.payout_settled().payout_id());
    if (open != state_.open_payouts().end()) payout_amount = open->second.amount().amount_minor();
  }
  PaymentsDomain::Apply(state_, event);
  auto record = [&](const auto& transfers) {
    for (const v1::Transfer& transfer : transfers) {
      history_[transfer.debit_account_id()].push_back(transfer);
      history_[transfer.credit_account_id()].push_back(transfer);
    }
  };
  auto paid_by_card = [&](const std::string& session) {
    return state_.sessions().at(session).sponsor_id().empty();
  };
  switch (event.body_case()) {
    case v1::PaymentsEvent::kHoldPlaced:
      record(event.hold_placed().transfers());
      break;
    case v1::PaymentsEvent::kSessionCaptured: {
      const v1::SessionCaptured& captured = event.session_captured();
      record(captured.transfers());
      const int64_t amount = captured.amount().amount_minor();
      if (paid_by_card(captured.session_id())) {
        spent_[state_.sessions().at(captured.session_id()).hold().person_id()] += amount;
        if (amount > 0) moved_at_processor_["capture:" + captured.session_id()] += amount;
      }
      break;
    }
    case v1::PaymentsEvent::kSessionVoided:
      record(event.session_voided().transfers());
      break;
    case v1::PaymentsEvent::kSessionRefunded: {
      const v1::SessionRefunded& refunded = event.session_refunded();
      record(refunded.transfers());
      const int64_t amount = refunded.amount().amount_minor();
      if (paid_by_card(refunded.session_id())) {
        refunded_[state_.sessions().at(refunded.session_id()).hold().person_id()] += amount;
        if (amount > 0) moved_at_processor_["refund:" + refunded.session_id()] += amount;
      }
      break;
    }
    case v1::PaymentsEvent::kSponsorBudgetFunded: {
      const v1::SponsorBudgetFunded& funded = event.sponsor_budget_funded();
      record(funded.transfers());
      for (const v1::Transfer& transfer : funded.transfers()) {
        moved_at_processor_["fund:" + funded.funding_id()] += transfer.amount();
      }
      break;
    }
    case v1::PaymentsEvent::kPayoutStarted:
      record(event.payout_started().transfers());
      break;
    case v1::PaymentsEvent::kPayoutSettled:
      record(event.payout_settled().transfers());
      if (event.payout_settled().paid()) {
        moved_at_processor_["payout:" + event.payout_settled().payout_id()] += payout_amount;
      }
      break;
    default:
      break;
  }
}

runtime::v1::Money PaymentsReadModel::Amount(int64_t minor) const {
  runtime::v1::Money money;
  money.set_currency_code(currency_);
  money.set_amount_minor(minor);
  return money;
}

std::vector<v1::ProcessorIntentRecorded> PaymentsReadModel::OpenIntents() const {
  absl::MutexLock lock(&mutex_);
  std::vector<v1::ProcessorIntentRecorded> open;
  for (const auto& [id, intent] : state_.open_intents()) open.push_back(intent);
  return open;
}

v1::GetBalanceResponse PaymentsReadModel::BalanceOf(const std::string& user_id,
                                                    absl::Time now) const {
  absl::MutexLock lock(&mutex_);
  static const std::vector<v1::Transfer> kNone;
  auto history = [&](const std::string& account) -> const std::vector<v1::Transfer>& {
    auto found = history_.find(account);
    return found == history_.end() ? kNone : found->second;
  };
  v1::GetBalanceResponse balance;
  const std::string payable = ExpertPayable(user_id);
  if (auto account = state_.ledger().accounts().find(payable);
      account != state_.ledger().accounts().end()) {
    const v1::LedgerAccount& a = account->second;
    const int64_t available = AvailableEarnings(state_, user_id, now, refund_window_);
    auto paying = state_.paying_out().find(user_id);
    auto paid = state_.paid_out().find(user_id);
    const int64_t on_its_way = paying == state_.paying_out().end() ? 0 : paying->second;
    // Earned but inside the refund window, and held for sessions not ended.
    const int64_t not_yet =
        std::max<int64_t>(0, Ledger::PostedBalance(a) - on_its_way - available);
    *balance.mutable_expert()->mutable_pending() = Amount(a.credits_pending() + not_yet);
    *balance.mutable_expert()->mutable_available() = Amount(available);
    *balance.mutable_expert()->mutable_paid_out() =
        Amount(paid == state_.paid_out().end() ? 0 : paid->second);
  }
  const std::string budget = SponsorBudget(user_id);
  if (auto account = state_.ledger().accounts().find(budget);
      account != state_.ledger().accounts().end()) {
    int64_t given_back = 0;
    for (const v1::Transfer& transfer : history(budget)) {
      if (transfer.credit_account_id() == budget &&
          absl::StartsWith(transfer.transfer_id(), "refund-")) {
        given_back += transfer.amount();
      }
    }
    const v1::LedgerAccount& a = account->second;
    *balance.mutable_sponsor()->mutable_budget() = Amount(Ledger::PostedBalance(a));
    *balance.mutable_sponsor()->mutable_reserved() = Amount(a.debits_pending());
    *balance.mutable_sponsor()->mutable_spent() = Amount(a.debits_posted() - given_back);
  }
  auto spent = spent_.find(user_id);
  auto refunded = refunded_.find(user_id);
  *balance.mutable_person()->mutable_spent() = Amount(spent == spent_.end() ? 0 : spent->second);
  *balance.mutable_person()->mutable_refunded() =
      Amount(refunded == refunded_.end() ? 0 : refunded->second);
  return balance;
}

std::vector<v1::Transfer> PaymentsReadModel::TransfersOf(
    const std::string& user_id, const std::optional<paging::TimeKey>& after, size_t limit) const {
  std::vector<v1::Transfer> all;
  {
    absl::MutexLock lock(&mutex_);
    for (const std::string& account : {ExpertPayable(user_id), SponsorBudget(user_id)}) {
      auto found = history_.find(account);
      if (found != history_.end()) all.insert(all.end(), found->second.begin(), found->second.end());
    }
  }
  auto key = [](const v1::Transfer& t) {
    return paging::TimeKey{FromProtoTime(t.timestamp()), t.transfer_id()};
  };
  std::sort(all.begin(), all.end(),
            [&](const v1::Transfer& a, const v1::Transfer& b) { return key(a) > key(b); });
  std::vector<v1::Transfer> page;
  for (v1::Transfer& transfer : all) {
    if (after && key(transfer) >= *after) continue;
    if (page.size() == limit) break;
    page.push_back(std::move(transfer));
  }
  return page;
}

std::optional<v1::PayoutStarted> PaymentsReadModel::OpenPayout(const std::string& payout_id) const {
  absl::MutexLock lock(&mutex_);
  auto open = state_.open_payouts().find(payout_id);
  if (open == state_.open_payouts().end()) return std::nullopt;
  return open->second;
}

v1::PaymentsState PaymentsReadModel::State() const {
  absl::MutexLock lock(&mutex_);
  return state_;
}

absl::flat_hash_map<std::string, v1::LedgerAccount> PaymentsReadModel::Recomputed() const {
  absl::MutexLock lock(&mutex_);
  absl::flat_hash_map<std::string, v1::LedgerAccount> accounts;
  // Each transfer once (it is in two histories); pending ones by outcome.
  absl::flat_hash_map<std::string, const v1::Transfer*> transfers;
  for (const auto& [account, list] : history_) {
    for (const v1::Transfer& transfer : list) transfers[transfer.transfer_id()] = &transfer;
  }
  absl::flat_hash_map<std::string, int64_t> settled;  // pending id -> settled
  for (const auto& [id, transfer] : transfers) {
    if (Has(transfer->flags(), v1::TRANSFER_FLAG_POST_PENDING) ||
        Has(transfer->flags(), v1::TRANSFER_FLAG_VOID_PENDING)) {
      settled[transfer->pending_id()] = 1;
    }
  }
  for (const auto& [id, transfer] : transfers) {
    // Both in first: a flat map moves its values when it grows.
    accounts[transfer->debit_account_id()];
    accounts[transfer->credit_account_id()];
    v1::LedgerAccount& debit = accounts.at(transfer->debit_account_id());
    v1::LedgerAccount& credit = accounts.at(transfer->credit_account_id());
    if (Has(transfer->flags(), v1::TRANSFER_FLAG_PENDING)) {
      if (!settled.contains(id)) {
        debit.set_debits_pending(debit.debits_pending() + transfer->amount());
        credit.set_credits_pending(credit.credits_pending() + transfer->amount());
      }
    } else if (!Has(transfer->flags(), v1::TRANSFER_FLAG_VOID_PENDING)) {
      debit.set_debits_posted(debit.debits_posted() + transfer->amount());
      credit.set_credits_posted(credit.credits_posted() + transfer->amount());
    }
  }
  return accounts;
}

absl::flat_hash_map<std::string, int64_t> PaymentsReadModel::MovedAtProcessor() const {
  absl::MutexLock lock(&mutex_);
  return moved_at_processor_;
}

}  // namespace helpline::payments
