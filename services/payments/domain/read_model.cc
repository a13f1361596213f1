#include "services/payments/domain/read_model.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/payments/domain/ledger.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

bool Has(uint32_t flags, uint32_t flag) { return (flags & flag) != 0; }

}  // namespace

PaymentsReadModel::PaymentsReadModel(std::string currency, absl::Duration refund_window)
    : currency_(std::move(currency)), refund_window_(refund_window) {}

void PaymentsReadModel::Record(const v1::Transfer& transfer) {
  history_[transfer.debit_account_id()].push_back(transfer);
  history_[transfer.credit_account_id()].push_back(transfer);
  // One account at a time: a flat map moves its values when it grows.
  auto add = [&](const std::string& id, int64_t debits_pending, int64_t credits_pending,
                 int64_t debits_posted, int64_t credits_posted) {
    v1::LedgerAccount& account = recomputed_[id];
    account.set_debits_pending(account.debits_pending() + debits_pending);
    account.set_credits_pending(account.credits_pending() + credits_pending);
    account.set_debits_posted(account.debits_posted() + debits_posted);
    account.set_credits_posted(account.credits_posted() + credits_posted);
  };
  const int64_t amount = transfer.amount();
  if (Has(transfer.flags(), v1::TRANSFER_FLAG_PENDING)) {
    add(transfer.debit_account_id(), amount, 0, 0, 0);
    add(transfer.credit_account_id(), 0, amount, 0, 0);
    open_pending_[transfer.transfer_id()] = transfer;
    return;
  }
  if (Has(transfer.flags(), v1::TRANSFER_FLAG_POST_PENDING) ||
      Has(transfer.flags(), v1::TRANSFER_FLAG_VOID_PENDING)) {
    auto pending = open_pending_.find(transfer.pending_id());
    if (pending != open_pending_.end()) {
      add(pending->second.debit_account_id(), -pending->second.amount(), 0, 0, 0);
      add(pending->second.credit_account_id(), 0, -pending->second.amount(), 0, 0);
      open_pending_.erase(pending);
    }
    if (Has(transfer.flags(), v1::TRANSFER_FLAG_VOID_PENDING)) return;
  }
  add(transfer.debit_account_id(), 0, 0, amount, 0);
  add(transfer.credit_account_id(), 0, 0, 0, amount);
  if (absl::StartsWith(transfer.transfer_id(), "refund-") &&
      absl::StartsWith(transfer.credit_account_id(), "sponsor:")) {
    given_back_[transfer.credit_account_id()] += amount;
  }
  for (const std::string& id : {transfer.debit_account_id(), transfer.credit_account_id()}) {
    if (!absl::EndsWith(id, ":owed")) continue;
    const v1::LedgerAccount& owed = recomputed_[id];
    const int64_t amount_owed = owed.debits_posted() - owed.credits_posted();
    const std::string subject = id.substr(0, id.size() - sizeof(":owed") + 1);
    if (amount_owed <= 0) {
      attention_.erase(subject);
      continue;
    }
    v1::MoneyAttention& entry = attention_[subject];
    entry.set_subject(subject);
    entry.set_state("OWED");
    *entry.mutable_amount() = Amount(amount_owed);
    entry.set_detail("refunds after a payout beyond the payable; recovered from the next earnings");
  }
}

void PaymentsReadModel::UpdateAttention(const std::string& session) {
  const std::string subject = absl::StrCat("session:", session);
  auto found = state_.sessions().find(session);
  if (found == state_.sessions().end()) {
    attention_.erase(subject);
    return;
  }
  const v1::SessionMoney& money = found->second;
  std::string state;
  int64_t amount = 0;
  switch (money.status()) {
    case v1::SESSION_MONEY_STATUS_CAPTURE_FAILED:
      // A take-back after the person asked for their money: nothing owed.
      if (money.unpaid_minor() > 0) {
        state = "CAPTURE_FAILED";
        amount = money.unpaid_minor();
      }
      break;
    case v1::SESSION_MONEY_STATUS_CAPTURING:
      state = "CAPTURING";
      amount = money.capturing().amount().amount_minor();
      break;
    case v1::SESSION_MONEY_STATUS_REFUNDING:
    case v1::SESSION_MONEY_STATUS_REFUND_FAILED:
      state = money.status() == v1::SESSION_MONEY_STATUS_REFUNDING ? "REFUNDING" : "REFUND_FAILED";
      amount = money.captured_minor();
      break;
    case v1::SESSION_MONEY_STATUS_FAILED:
      if (money.unpaid_minor() > 0) {
        state = "UNPAID";
        amount = money.unpaid_minor();
      }
      break;
    case v1::SESSION_MONEY_STATUS_AWAITING_HOLD:
      // Normal for moments (an end read before its match); for long, the
      // match's hold never came.
      state = "AWAITING_HOLD";
      amount = money.capture_waiting().amount().amount_minor();
      break;
    default:
      break;
  }
  if (state.empty()) {
    attention_.erase(subject);
    return;
  }
  v1::MoneyAttention& entry = attention_[subject];
  entry.set_subject(subject);
  entry.set_state(state);
  *entry.mutable_amount() = Amount(amount);
  entry.set_detail(money.failure());
}

void PaymentsReadModel::Apply(const v1::PaymentsEvent& event) {
  if (event.meta().aggregate_id() != LedgerId(currency_)) return;
  absl::MutexLock lock(&mutex_);
  sponsors_.Apply(event);
  // A decline that takes back what the ledger had posted before captures
  // and refunds waited for the processor: the status it takes back.
  v1::SessionMoneyStatus before = v1::SESSION_MONEY_STATUS_UNSPECIFIED;
  if (const std::string* session = SessionOf(event); session != nullptr) {
    auto money = state_.sessions().find(*session);
    if (money != state_.sessions().end()) before = money->second.status();
  }
  int64_t payout_amount = 0;
  if (event.has_payout_settled()) {
    auto open = state_.open_payouts().find(event.payout_settled().payout_id());
    if (open != state_.open_payouts().end()) payout_amount = open->second.amount().amount_minor();
  }
  PaymentsDomain::Apply(state_, event);
  auto record = [&](const auto& transfers) {
    for (const v1::Transfer& transfer : transfers) Record(transfer);
  };
  auto money_of = [&](const std::string& session) -> const v1::SessionMoney& {
    return state_.sessions().at(session);
  };
  switch (event.body_case()) {
    case v1::PaymentsEvent::kHoldPlaced:
      record(event.hold_placed().transfers());
      break;
    case v1::PaymentsEvent::kSessionCaptured: {
      const v1::SessionCaptured& captured = event.session_captured();
      record(captured.transfers());
      const int64_t amount = captured.amount().amount_minor();
      const v1::SessionMoney& money = money_of(captured.session_id());
      if (money.sponsor_id().empty()) {
        spent_[money.hold().person_id()] += amount;
        // Before captures waited for the processor, they had no intent id.
        std::string intent = captured.intent_id();
        if (intent.empty() && amount > 0) intent = "capture:" + captured.session_id();
        if (!intent.empty()) AddMoved(intent, amount);
      }
      break;
    }
    case v1::PaymentsEvent::kCaptureFailed: {
      const v1::CaptureFailed& failed = event.capture_failed();
      record(failed.transfers());
      const v1::SessionMoney& money = money_of(failed.session_id());
      owed_by_person_[money.hold().person_id()] += failed.amount().amount_minor();
      // A capture the earlier code had posted (and maybe refunded), taken back.
      if (before == v1::SESSION_MONEY_STATUS_CAPTURED ||
          before == v1::SESSION_MONEY_STATUS_REFUNDING ||
          before == v1::SESSION_MONEY_STATUS_REFUND_FAILED ||
          before == v1::SESSION_MONEY_STATUS_REFUNDED) {
        spent_[money.hold().person_id()] -= money.captured_minor();
        moved_at_processor_.erase("capture:" + failed.session_id());
      }
      if (before == v1::SESSION_MONEY_STATUS_REFUNDED) {
        refunded_[money.hold().person_id()] -= money.captured_minor();
        moved_at_processor_.erase("refund:" + failed.session_id());
      }
      break;
    }
    case v1::PaymentsEvent::kRefundFailed: {
      const v1::RefundFailed& failed = event.refund_failed();
      record(failed.transfers());
      if (before == v1::SESSION_MONEY_STATUS_REFUNDED) {
        refunded_[money_of(failed.session_id()).hold().person_id()] -=
            failed.amount().amount_minor();
        moved_at_processor_.erase("refund:" + failed.session_id());
      }
      break;
    }
    case v1::PaymentsEvent::kSessionUnpaid:
      owed_by_person_[money_of(event.session_unpaid().session_id()).hold().person_id()] +=
          event.session_unpaid().amount().amount_minor();
      break;
    case v1::PaymentsEvent::kSessionVoided:
      record(event.session_voided().transfers());
      break;
    case v1::PaymentsEvent::kSessionRefunded: {
      const v1::SessionRefunded& refunded = event.session_refunded();
      record(refunded.transfers());
      const int64_t amount = refunded.amount().amount_minor();
      const v1::SessionMoney& money = money_of(refunded.session_id());
      if (money.sponsor_id().empty()) {
        refunded_[money.hold().person_id()] += amount;
        std::string intent = refunded.intent_id();
        if (intent.empty() && amount > 0) intent = "refund:" + refunded.session_id();
        if (!intent.empty()) AddMoved(intent, amount);
      }
      break;
    }
    case v1::PaymentsEvent::kSponsorBudgetFunded: {
      const v1::SponsorBudgetFunded& funded = event.sponsor_budget_funded();
      record(funded.transfers());
      for (const v1::Transfer& transfer : funded.transfers()) {
        AddMoved("fund:" + funded.funding_id(), transfer.amount());
      }
      break;
    }
    case v1::PaymentsEvent::kPayoutStarted:
      record(event.payout_started().transfers());
      break;
    case v1::PaymentsEvent::kPayoutSettled:
      record(event.payout_settled().transfers());
      if (event.payout_settled().paid()) {
        AddMoved("payout:" + event.payout_settled().payout_id(), payout_amount);
      }
      break;
    default:
      break;
  }
  if (const std::string* session = SessionOf(event); session != nullptr) {
    UpdateAttention(*session);
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
  v1::GetBalanceResponse balance;
  auto value = [](const auto& map, const std::string& key) -> int64_t {
    auto found = map.find(key);
    return found == map.end() ? 0 : found->second;
  };
  if (auto account = state_.ledger().accounts().find(ExpertPayable(user_id));
      account != state_.ledger().accounts().end()) {
    const v1::LedgerAccount& a = account->second;
    const int64_t available = AvailableEarnings(state_, user_id, now, refund_window_);
    const int64_t on_its_way = value(state_.paying_out(), user_id);
    // Earned but inside the refund window, and held for sessions not ended.
    const int64_t not_yet =
        std::max<int64_t>(0, Ledger::PostedBalance(a) - on_its_way - available);
    *balance.mutable_expert()->mutable_pending() = Amount(a.credits_pending() + not_yet);
    *balance.mutable_expert()->mutable_available() = Amount(available);
    *balance.mutable_expert()->mutable_paid_out() = Amount(value(state_.paid_out(), user_id));
    int64_t owed = 0;
    if (auto debt = state_.ledger().accounts().find(ExpertOwed(user_id));
        debt != state_.ledger().accounts().end()) {
      owed = std::max<int64_t>(0, debt->second.debits_posted() - debt->second.credits_posted());
    }
    *balance.mutable_expert()->mutable_owed() = Amount(owed);
  }
  const std::string budget = SponsorBudget(user_id);
  if (auto account = state_.ledger().accounts().find(budget);
      account != state_.ledger().accounts().end()) {
    const v1::LedgerAccount& a = account->second;
    *balance.mutable_sponsor()->mutable_budget() = Amount(Ledger::PostedBalance(a));
    *balance.mutable_sponsor()->mutable_reserved() = Amount(a.debits_pending());
    *balance.mutable_sponsor()->mutable_spent() =
        Amount(a.debits_posted() - value(given_back_, budget));
  }
  *balance.mutable_person()->mutable_spent() = Amount(value(spent_, user_id));
  *balance.mutable_person()->mutable_refunded() = Amount(value(refunded_, user_id));
  *balance.mutable_person()->mutable_owed() = Amount(value(owed_by_person_, user_id));
  return balance;
}

std::vector<v1::Transfer> PaymentsReadModel::TransfersOf(
    const std::string& user_id, const std::optional<paging::TimeKey>& after, size_t limit) const {
  std::vector<v1::Transfer> all;
  {
    absl::MutexLock lock(&mutex_);
    for (const std::string& account :
         {ExpertPayable(user_id), ExpertOwed(user_id), SponsorBudget(user_id)}) {
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

std::optional<v1::SessionMoney> PaymentsReadModel::SessionMoney(
    const std::string& session_id) const {
  absl::MutexLock lock(&mutex_);
  auto found = state_.sessions().find(session_id);
  if (found == state_.sessions().end()) return std::nullopt;
  return found->second;
}

PaymentsReadModel::Balances PaymentsReadModel::AccountsAndRecomputed() const {
  absl::MutexLock lock(&mutex_);
  return {{state_.ledger().accounts().begin(), state_.ledger().accounts().end()}, recomputed_};
}

PaymentsReadModel::LedgerSide PaymentsReadModel::MovedAtProcessor(
    const std::string& intent_id) const {
  absl::MutexLock lock(&mutex_);
  LedgerSide side;
  auto found = moved_at_processor_.find(intent_id);
  if (found != moved_at_processor_.end()) side.amount = found->second.amount;
  side.open = state_.open_intents().contains(intent_id);
  return side;
}

void PaymentsReadModel::AddMoved(const std::string& intent_id, int64_t amount) {
  Moved& moved = moved_at_processor_[intent_id];
  moved.amount += amount;
  moved.recorded = ++moved_recorded_;
}

uint64_t PaymentsReadModel::MovedAtProcessorMark() const {
  absl::MutexLock lock(&mutex_);
  return moved_recorded_ + 1;
}

size_t PaymentsReadModel::MovedAtProcessorCount() const {
  absl::MutexLock lock(&mutex_);
  return moved_at_processor_.size();
}

std::vector<std::string> PaymentsReadModel::MovedAtProcessorExcept(
    const absl::flat_hash_set<std::string>& seen, uint64_t mark) const {
  absl::MutexLock lock(&mutex_);
  std::vector<std::string> missing;
  for (const auto& [intent, moved] : moved_at_processor_) {
    if (moved.recorded < mark && !seen.contains(intent)) missing.push_back(intent);
  }
  return missing;
}

std::vector<v1::MoneyAttention> PaymentsReadModel::Attention() const {
  absl::MutexLock lock(&mutex_);
  std::vector<v1::MoneyAttention> entries;
  for (const auto& [subject, entry] : attention_) entries.push_back(entry);
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.subject() < b.subject(); });
  return entries;
}

MoneyFigures PaymentsReadModel::Figures() const {
  absl::MutexLock lock(&mutex_);
  MoneyFigures figures;
  for (const char* state : {"CAPTURE_FAILED", "REFUND_FAILED", "CAPTURING", "REFUNDING", "UNPAID",
                            "OWED", "AWAITING_HOLD"}) {
    figures.count[state] = 0;
    figures.amount_minor[state] = 0;
  }
  for (const auto& [subject, entry] : attention_) {
    ++figures.count[entry.state()];
    figures.amount_minor[entry.state()] += entry.amount().amount_minor();
  }
  return figures;
}

std::vector<SponsorProgramBurn> PaymentsReadModel::SponsorPrograms(absl::Time now) const {
  absl::ReaderMutexLock lock(&mutex_);
  return sponsors_.Report(now);
}

}  // namespace helpline::payments
