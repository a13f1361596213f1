#include "services/payments/domain/payments_domain.h"

#include <algorithm>
#include <functional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/payments/domain/ledger.h"
#include "services/payments/domain/money.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

using v1::PaymentsCommand;
using v1::PaymentsEvent;
using Events = std::vector<PaymentsEvent>;


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

// A working copy of the ledger for decide, holding only what the
// transfers touch (their accounts and ids, and the pending transfers they
// settle), so a decision costs the same however large the ledger grows:
// opens the accounts the transfers need, takes them, and says whether all
// were taken.
struct Attempt {
  explicit Attempt(const v1::PaymentsState& state) : full(state.ledger()) {}

  void Copy(const std::string& account_id) {
    if (account_id.empty()) return;
    auto found = full.accounts().find(account_id);
    if (found != full.accounts().end()) (*ledger_state.mutable_accounts())[account_id] = found->second;
  }

  void CopyTaken(const std::string& transfer_id) {
    if (transfer_id.empty()) return;
    auto found = full.taken().find(transfer_id);
    if (found == full.taken().end()) return;
    (*ledger_state.mutable_taken())[transfer_id] = found->second;
    Copy(found->second.transfer().debit_account_id());
    Copy(found->second.transfer().credit_account_id());
  }

  bool Take(std::vector<v1::Transfer> transfers, absl::Time now) {
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

  const v1::LedgerState& full;
  v1::LedgerState ledger_state;
  std::vector<v1::Transfer> taken;
  std::vector<v1::TransferResult> results;
};

std::string FirstProblem(const Attempt& attempt) {
  for (v1::TransferResult result : attempt.results) {
    if (result != v1::TRANSFER_RESULT_OK && result != v1::TRANSFER_RESULT_LINKED_EVENT_FAILED) {
      return v1::TransferResult_Name(result);
    }
  }
  return "TRANSFER_RESULT_UNSPECIFIED";
}

PaymentsEvent Intent(const std::string& id, v1::IntentKind kind, const runtime::v1::Money& amount,
                     const std::string& reference, const std::string& authorisation_id = "") {
  PaymentsEvent event;
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

std::string CaptureIntentId(const std::string& session) {
  return absl::StrCat("capture:", session);
}

// The first refund of a session keeps the id it always had.
std::string RefundIntentId(const std::string& session, int32_t attempt) {
  return attempt <= 1 ? absl::StrCat("refund:", session)
                      : absl::StrCat("refund:", session, "/", attempt);
}

PaymentsEvent Unpaid(const std::string& session, const runtime::v1::Money& amount,
                     const std::string& reason) {
  PaymentsEvent unpaid;
  unpaid.mutable_session_unpaid()->set_session_id(session);
  *unpaid.mutable_session_unpaid()->mutable_amount() = amount;
  unpaid.mutable_session_unpaid()->set_reason(reason);
  return unpaid;
}

const v1::LedgerAccount* AccountOf(const v1::PaymentsState& state, const std::string& id) {
  auto found = state.ledger().accounts().find(id);
  return found == state.ledger().accounts().end() ? nullptr : &found->second;
}

// What the expert owes back from refunds after payouts.
int64_t Owed(const v1::PaymentsState& state, const std::string& expert_id) {
  const v1::LedgerAccount* owed = AccountOf(state, ExpertOwed(expert_id));
  return owed == nullptr ? 0 : std::max<int64_t>(0, owed->debits_posted() - owed->credits_posted());
}

// What the expert's payable can still give: posted, less payouts on their way.
int64_t Spendable(const v1::PaymentsState& state, const std::string& expert_id) {
  const v1::LedgerAccount* payable = AccountOf(state, ExpertPayable(expert_id));
  return payable == nullptr ? 0
                            : payable->credits_posted() - payable->debits_posted() -
                                  payable->debits_pending();
}

// The linked pending transfers holding a session's maximum: the expert's
// share and the fee, from `source`.
std::vector<v1::Transfer> HoldTransfers(const v1::HoldSession& hold, const std::string& source) {
  Split split = SplitAmount(hold.max_amount().amount_minor(), hold.commission_bps());
  const std::string reference = absl::StrCat("session:", hold.session_id());
  std::vector<v1::Transfer> transfers;
  if (split.expert_share > 0) {
    transfers.push_back(Move(absl::StrCat("hold-share:", hold.session_id()), source,
                             ExpertPayable(hold.expert_id()), split.expert_share,
                             v1::TRANSFER_FLAG_PENDING, reference));
  }
  if (split.fee > 0) {
    transfers.push_back(Move(absl::StrCat("hold-fee:", hold.session_id()), source,
                             kCommissionAccount, split.fee, v1::TRANSFER_FLAG_PENDING, reference));
  }
  for (size_t i = 0; i + 1 < transfers.size(); ++i) {
    transfers[i].set_flags(transfers[i].flags() | v1::TRANSFER_FLAG_LINKED);
  }
  return transfers;
}

// Places a hold from `source`: HoldPlaced, or HoldFailed if the ledger says no.
PaymentsEvent Place(const v1::PaymentsState& state, const v1::HoldSession& hold,
                    const std::string& source, const std::string& sponsor_id, absl::Time now) {
  PaymentsEvent event;
  Attempt attempt(state);
  if (!attempt.Take(HoldTransfers(hold, source), now)) {
    v1::HoldFailed& failed = *event.mutable_hold_failed();
    failed.set_session_id(hold.session_id());
    *failed.mutable_hold() = hold;
    failed.set_reason(sponsor_id.empty()
                          ? absl::StrCat("the hold was refused: ", FirstProblem(attempt))
                          : "the sponsor's budget does not cover the session");
    return event;
  }
  v1::HoldPlaced& placed = *event.mutable_hold_placed();
  placed.set_session_id(hold.session_id());
  for (v1::Transfer& transfer : attempt.taken) *placed.add_transfers() = std::move(transfer);
  *placed.mutable_max_amount() = hold.max_amount();
  placed.set_sponsor_id(sponsor_id);
  *placed.mutable_hold() = hold;
  return event;
}

// Posts a session's capture in the ledger: the hold's pending transfers
// for the actual split (the rest released), then what the expert owes from
// earlier refunds out of their share. `intent_id` is the processor's
// capture it follows ("" when nothing was taken there).
absl::StatusOr<Events> PostCapture(const v1::PaymentsState& state, const v1::SessionMoney& money,
                                   const v1::CaptureSession& capture, const std::string& intent_id,
                                   absl::Time now) {
  const v1::HoldSession& hold = money.hold();
  const int64_t amount = capture.amount().amount_minor();
  Split split = SplitAmount(amount, hold.commission_bps());
  const std::string reference = absl::StrCat("session:", hold.session_id());
  std::vector<v1::Transfer> transfers;
  if (!money.share_hold_id().empty()) {
    transfers.push_back(Settle(absl::StrCat("capture-share:", hold.session_id()),
                               money.share_hold_id(), split.expert_share, reference));
  } else if (split.expert_share > 0) {
    return absl::InternalError("no share was held");
  }
  if (!money.fee_hold_id().empty()) {
    transfers.push_back(Settle(absl::StrCat("capture-fee:", hold.session_id()),
                               money.fee_hold_id(), split.fee, reference));
  } else if (split.fee > 0) {
    return absl::InternalError("no fee was held");
  }
  const int64_t owed = Owed(state, hold.expert_id());
  if (owed > 0 && split.expert_share > 0) {
    transfers.push_back(Move(absl::StrCat("recover:", hold.session_id()),
                             ExpertPayable(hold.expert_id()), ExpertOwed(hold.expert_id()),
                             std::min(owed, split.expert_share), 0, reference));
  }
  Attempt attempt(state);
  if (!attempt.Take(transfers, now)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the capture was refused: ", FirstProblem(attempt)));
  }
  PaymentsEvent captured;
  v1::SessionCaptured& done = *captured.mutable_session_captured();
  done.set_session_id(hold.session_id());
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  *done.mutable_amount() = capture.amount();
  done.set_fee_minor(split.fee);
  done.set_expert_share_minor(split.expert_share);
  done.set_intent_id(intent_id);
  return Events{captured};
}

// A held session's capture. A sponsored one, or one that billed nothing,
// is posted at once; a paid one asks the processor first (CAPTURING) and
// is posted when it confirms.
absl::StatusOr<Events> Capture(const v1::PaymentsState& state, const v1::SessionMoney& money,
                               const v1::CaptureSession& capture, absl::Time now) {
  const v1::HoldSession& hold = money.hold();
  const int64_t amount = capture.amount().amount_minor();
  if (amount < 0 || amount > hold.max_amount().amount_minor()) {
    return errors::InvalidField("capture_session.amount", "must be 0 to the held maximum");
  }
  const std::string& session = hold.session_id();
  if (!money.sponsor_id().empty()) return PostCapture(state, money, capture, "", now);
  if (amount == 0) {
    absl::StatusOr<Events> events = PostCapture(state, money, capture, "", now);
    // Nothing to take at the processor: let the authorisation go.
    if (events.ok()) {
      events->push_back(Intent(absl::StrCat("void:", session), v1::INTENT_KIND_VOID,
                               hold.max_amount(), session, money.authorisation_id()));
    }
    return events;
  }
  PaymentsEvent requested;
  requested.mutable_capture_requested()->set_session_id(session);
  *requested.mutable_capture_requested()->mutable_amount() = capture.amount();
  return Events{requested, Intent(CaptureIntentId(session), v1::INTENT_KIND_CAPTURE,
                                  capture.amount(), session, money.authorisation_id())};
}

// The processor declined the capture: the hold is released, nothing is
// payable to the expert, the person owes the amount.
Events FailCapture(const v1::PaymentsState& state, const v1::SessionMoney& money,
                   const std::string& reason, absl::Time now) {
  const std::string& session = money.hold().session_id();
  const std::string reference = absl::StrCat("session:", session);
  std::vector<v1::Transfer> transfers;
  for (const std::string& pending : {money.share_hold_id(), money.fee_hold_id()}) {
    if (!pending.empty()) {
      transfers.push_back(Settle(absl::StrCat("void:", pending), pending, 0, reference));
    }
  }
  Attempt attempt(state);
  attempt.Take(transfers, now);  // voids of open pending transfers: always taken
  PaymentsEvent failed;
  v1::CaptureFailed& done = *failed.mutable_capture_failed();
  done.set_session_id(session);
  *done.mutable_amount() = money.capturing().amount();
  done.set_reason(reason);
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  // What the authorisation still holds on the person's card is let go.
  return Events{failed, Intent(absl::StrCat("void:", session), v1::INTENT_KIND_VOID,
                               money.hold().max_amount(), session, money.authorisation_id())};
}

absl::StatusOr<Events> Void(const v1::PaymentsState& state, const v1::SessionMoney& money,
                            const std::string& reason, absl::Time now) {
  const std::string& session = money.hold().session_id();
  const std::string reference = absl::StrCat("session:", session);
  std::vector<v1::Transfer> transfers;
  for (const std::string& pending : {money.share_hold_id(), money.fee_hold_id()}) {
    if (pending.empty()) continue;
    transfers.push_back(Settle(absl::StrCat("void:", pending), pending, 0, reference));
  }
  Attempt attempt(state);
  if (!attempt.Take(transfers, now)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the void was refused: ", FirstProblem(attempt)));
  }
  Events events;
  PaymentsEvent voided;
  voided.mutable_session_voided()->set_session_id(session);
  voided.mutable_session_voided()->set_reason(reason);
  for (v1::Transfer& transfer : attempt.taken) {
    *voided.mutable_session_voided()->add_transfers() = std::move(transfer);
  }
  events.push_back(voided);
  if (money.sponsor_id().empty()) {
    events.push_back(Intent(absl::StrCat("void:", session), v1::INTENT_KIND_VOID,
                            money.hold().max_amount(), session, money.authorisation_id()));
  }
  return events;
}

// The linked transfers that give a captured session's money back to
// `back_to` (ids "<prefix>-share:<session>" ...): the fee from the
// commission; the expert's share from their payable as far as it can give
// it, then from expert:<id>:owed for what payouts still on their way hold
// and earlier refunds did not claim (recovered from the money if the
// processor refuses them, owed if it pays), and the rest, paid out
// already, from expert:<id>:owed or, if the platform absorbs it, from
// platform:refund_losses.
std::vector<v1::Transfer> GiveBack(const v1::PaymentsState& state, const v1::SessionMoney& money,
                                   const std::string& back_to, bool platform_absorbs,
                                   const std::string& prefix) {
  const v1::HoldSession& hold = money.hold();
  const std::string& session = hold.session_id();
  const std::string& expert = hold.expert_id();
  const std::string reference = absl::StrCat("session:", session);
  const int64_t fee = money.captured_fee_minor();
  const int64_t share = money.captured_minor() - fee;
  const v1::LedgerAccount* payable = AccountOf(state, ExpertPayable(expert));
  auto claimed = state.owed_against_payouts().find(expert);
  const int64_t paying_out = std::max<int64_t>(
      0, (payable == nullptr ? 0 : payable->debits_pending()) -
             (claimed == state.owed_against_payouts().end() ? 0 : claimed->second));
  const int64_t from_payable = std::clamp<int64_t>(Spendable(state, expert), 0, share);
  const int64_t in_flight = std::min(share - from_payable, paying_out);
  const int64_t paid_out = share - from_payable - in_flight;
  std::vector<v1::Transfer> transfers;
  auto add = [&](const char* part, const std::string& from, int64_t amount) {
    if (amount > 0) {
      transfers.push_back(Move(absl::StrCat(prefix, "-", part, ":", session), from, back_to,
                               amount, 0, reference));
    }
  };
  add("share", ExpertPayable(expert), from_payable);
  add("in-flight", ExpertOwed(expert), in_flight);
  add("shortfall", platform_absorbs ? kRefundLossesAccount : ExpertOwed(expert), paid_out);
  add("fee", kCommissionAccount, fee);
  for (size_t i = 0; i + 1 < transfers.size(); ++i) transfers[i].set_flags(v1::TRANSFER_FLAG_LINKED);
  return transfers;
}

// Posts a refund in the ledger (GiveBack to the card, cash:psp, or to the
// sponsor's budget).
absl::StatusOr<Events> PostRefund(const v1::PaymentsState& state, const v1::SessionMoney& money,
                                  const v1::RefundSession& refund, const std::string& intent_id,
                                  absl::Time now) {
  const v1::HoldSession& hold = money.hold();
  const std::string& session = hold.session_id();
  const std::string back_to =
      money.sponsor_id().empty() ? kCashAccount : SponsorBudget(money.sponsor_id());
  Attempt attempt(state);
  // A retry after a refund posted by the earlier code was taken back gets
  // ids of its own (the taken-back ones are remembered for days).
  const std::string prefix =
      money.refund_attempt() <= 1 ? "refund" : absl::StrCat("refund/", money.refund_attempt());
  if (!attempt.Take(GiveBack(state, money, back_to, refund.platform_absorbs_shortfall(), prefix),
                    now)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the refund was refused: ", FirstProblem(attempt)));
  }
  PaymentsEvent refunded;
  v1::SessionRefunded& done = *refunded.mutable_session_refunded();
  done.set_session_id(session);
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  *done.mutable_amount() = Minor(hold.max_amount().currency_code(), money.captured_minor());
  done.set_reason(refund.reason());
  done.set_intent_id(intent_id);
  done.set_platform_absorbs_shortfall(refund.platform_absorbs_shortfall());
  return Events{refunded};
}

// Before captures and refunds waited for the processor, the ledger posted
// them when asked: a decline that comes for one of those now takes the
// posting back, so the ledger holds only what the processor did.
absl::StatusOr<Events> TakeBackCapture(const v1::PaymentsState& state,
                                       const v1::SessionMoney& money, const std::string& reason,
                                       absl::Time now) {
  Attempt attempt(state);
  // Refunded already by the earlier code: capture and refund cancel out.
  const std::vector<v1::Transfer> transfers =
      money.status() == v1::SESSION_MONEY_STATUS_REFUNDED && money.refund_attempt() == 0
          ? std::vector<v1::Transfer>{}
          : GiveBack(state, money, kCashAccount, false, "uncapture");
  if (!attempt.Take(transfers, now)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the capture could not be taken back: ", FirstProblem(attempt)));
  }
  const std::string& session = money.hold().session_id();
  PaymentsEvent failed;
  v1::CaptureFailed& done = *failed.mutable_capture_failed();
  done.set_session_id(session);
  // The person owes the session, unless they had asked for their money back.
  *done.mutable_amount() = Minor(
      money.hold().max_amount().currency_code(),
      money.status() == v1::SESSION_MONEY_STATUS_CAPTURED ? money.captured_minor() : 0);
  done.set_reason(reason);
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  return Events{failed, Intent(absl::StrCat("void:", session), v1::INTENT_KIND_VOID,
                               money.hold().max_amount(), session, money.authorisation_id())};
}

absl::StatusOr<Events> TakeBackRefund(const v1::PaymentsState& state,
                                      const v1::SessionMoney& money, const std::string& reason,
                                      absl::Time now) {
  const std::string& session = money.hold().session_id();
  const std::string reference = absl::StrCat("session:", session);
  const int64_t fee = money.captured_fee_minor();
  std::vector<v1::Transfer> transfers;
  if (money.captured_minor() - fee > 0) {
    transfers.push_back(Move(absl::StrCat("unrefund-share:", session), kCashAccount,
                             ExpertPayable(money.hold().expert_id()),
                             money.captured_minor() - fee, v1::TRANSFER_FLAG_LINKED, reference));
  }
  if (fee > 0) {
    transfers.push_back(Move(absl::StrCat("unrefund-fee:", session), kCashAccount,
                             kCommissionAccount, fee, 0, reference));
  }
  if (!transfers.empty()) transfers.back().set_flags(0);
  Attempt attempt(state);
  if (!attempt.Take(transfers, now)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the refund could not be taken back: ", FirstProblem(attempt)));
  }
  PaymentsEvent failed;
  v1::RefundFailed& done = *failed.mutable_refund_failed();
  done.set_session_id(session);
  *done.mutable_amount() = Minor(money.hold().max_amount().currency_code(), money.captured_minor());
  done.set_reason(reason);
  done.set_attempt(1);
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  return Events{failed};
}

// A captured session's refund: a sponsored one, or one that took nothing,
// is posted at once; a paid one asks the processor first (REFUNDING).
absl::StatusOr<Events> Refund(const v1::PaymentsState& state, const v1::SessionMoney& money,
                              const v1::RefundSession& refund, int32_t attempt, absl::Time now) {
  if (!money.sponsor_id().empty() || money.captured_minor() <= 0) {
    return PostRefund(state, money, refund, "", now);
  }
  const std::string& session = money.hold().session_id();
  PaymentsEvent started;
  v1::RefundStarted& start = *started.mutable_refund_started();
  start.set_session_id(session);
  *start.mutable_amount() = Minor(money.hold().max_amount().currency_code(), money.captured_minor());
  start.set_reason(refund.reason());
  start.set_attempt(attempt);
  start.set_platform_absorbs_shortfall(refund.platform_absorbs_shortfall());
  return Events{started, Intent(RefundIntentId(session, attempt), v1::INTENT_KIND_REFUND,
                                start.amount(), session, money.authorisation_id())};
}

// The hold failed: HoldFailed, and SessionUnpaid when the session already
// ended with something to pay (its capture waited for the hold).
Events FailHold(const v1::PaymentsState& state, const v1::HoldSession& hold,
                const std::string& reason) {
  const std::string& session = hold.session_id();
  PaymentsEvent failed;
  failed.mutable_hold_failed()->set_session_id(session);
  failed.mutable_hold_failed()->set_reason(reason);
  *failed.mutable_hold_failed()->mutable_hold() = hold;
  Events events{failed};
  auto money = state.sessions().find(session);
  if (money != state.sessions().end() && money->second.has_capture_waiting() &&
      money->second.capture_waiting().amount().amount_minor() > 0) {
    events.push_back(Unpaid(session, money->second.capture_waiting().amount(), reason));
  }
  return events;
}

// A settlement that waits for the session's hold.
Events Queued(PaymentsEvent event, const std::string& session_id) {
  event.mutable_settlement_queued()->set_session_id(session_id);
  return Events{std::move(event)};
}

// The part of `state` a session's settlement reads (its money, its hold's
// pending transfers and the accounts it can move) with `events` applied:
// what a settlement decided in the same step as `events` sees.
v1::PaymentsState SessionView(const v1::PaymentsState& state, const std::string& session,
                              const Events& events) {
  v1::PaymentsState view;
  auto money = state.sessions().find(session);
  if (money != state.sessions().end()) (*view.mutable_sessions())[session] = money->second;
  *view.mutable_ledger()->mutable_pruned_at() = state.ledger().pruned_at();
  auto copy = [&](const std::string& account) {
    auto found = state.ledger().accounts().find(account);
    if (found != state.ledger().accounts().end()) {
      (*view.mutable_ledger()->mutable_accounts())[account] = found->second;
    }
  };
  auto copy_parties = [&](const v1::HoldSession& hold, const std::string& sponsor_id) {
    for (const std::string& account :
         {std::string(kCashAccount), std::string(kCommissionAccount),
          std::string(kRefundLossesAccount), ExpertPayable(hold.expert_id()),
          ExpertOwed(hold.expert_id())}) {
      copy(account);
    }
    if (!sponsor_id.empty()) copy(SponsorBudget(sponsor_id));
  };
  if (money != state.sessions().end()) {
    copy_parties(money->second.hold(), money->second.sponsor_id());
    for (const std::string& pending : {money->second.share_hold_id(), money->second.fee_hold_id()}) {
      auto taken = state.ledger().taken().find(pending);
      if (!pending.empty() && taken != state.ledger().taken().end()) {
        (*view.mutable_ledger()->mutable_taken())[pending] = taken->second;
      }
    }
  }
  for (const PaymentsEvent& event : events) {
    if (event.has_hold_placed()) {
      copy_parties(event.hold_placed().hold(), event.hold_placed().sponsor_id());
    }
    PaymentsDomain::Apply(view, event);
  }
  return view;
}

// A settlement decided after `events`, against the state they leave.
using Settlement = std::function<absl::StatusOr<Events>(const v1::PaymentsState& view,
                                                        const v1::SessionMoney& money)>;
Events Then(const v1::PaymentsState& state, const std::string& session, Events events,
            const Settlement& settle) {
  v1::PaymentsState view = SessionView(state, session, events);
  auto money = view.sessions().find(session);
  if (money == view.sessions().end()) return events;
  absl::StatusOr<Events> more = settle(view, money->second);
  if (more.ok()) events.insert(events.end(), more->begin(), more->end());
  return events;
}

// After `events`: the refund that waited for the session's capture to be
// posted, if it is posted now.
Events RefundWaiting(const v1::PaymentsState& state, const std::string& session, Events events,
                     absl::Time now) {
  return Then(state, session, std::move(events),
              [&](const v1::PaymentsState& view,
                  const v1::SessionMoney& money) -> absl::StatusOr<Events> {
                if (money.status() != v1::SESSION_MONEY_STATUS_CAPTURED ||
                    !money.has_refund_waiting()) {
                  return Events{};
                }
                return Refund(view, money, money.refund_waiting(), 1, now);
              });
}

// `events` place a session's hold; adds what waited for it: a void, or a
// capture and maybe its refund (once the capture is posted).
Events SettleWaiting(const v1::PaymentsState& state, const std::string& session, Events events,
                     absl::Time now) {
  return Then(state, session, std::move(events),
              [&](const v1::PaymentsState& view,
                  const v1::SessionMoney& money) -> absl::StatusOr<Events> {
                if (money.status() == v1::SESSION_MONEY_STATUS_FAILED &&
                    money.unpaid_minor() == 0 && money.has_capture_waiting() &&
                    money.capture_waiting().amount().amount_minor() > 0) {
                  return Events{Unpaid(session, money.capture_waiting().amount(), money.failure())};
                }
                if (money.status() != v1::SESSION_MONEY_STATUS_HELD) return Events{};
                if (money.void_waiting()) {
                  return Void(view, money, "cancelled before the hold was placed", now);
                }
                if (!money.has_capture_waiting()) return Events{};
                // A session never bills more than its hold (its maximum
                // minutes); should an end say more, the maximum is taken.
                v1::CaptureSession capture = money.capture_waiting();
                capture.mutable_amount()->set_amount_minor(
                    std::min(capture.amount().amount_minor(),
                             money.hold().max_amount().amount_minor()));
                absl::StatusOr<Events> captured = Capture(view, money, capture, now);
                if (!captured.ok()) return captured;
                return RefundWaiting(view, session, std::move(*captured), now);
              });
}

// A payout of everything available to `expert_id`, if at least `minimum`.
std::optional<PaymentsEvent> StartPayout(const v1::PaymentsState& state,
                                         const std::string& payout_id,
                                         const std::string& expert_id, const std::string& currency,
                                         int64_t minimum, absl::Duration window, absl::Time now) {
  int64_t amount = AvailableEarnings(state, expert_id, now, window);
  if (amount <= 0 || amount < minimum) return std::nullopt;
  Attempt attempt(state);
  if (!attempt.Take({Move(absl::StrCat("payout:", payout_id), ExpertPayable(expert_id),
                          kCashAccount, amount, v1::TRANSFER_FLAG_PENDING,
                          absl::StrCat("payout:", payout_id))},
                    now)) {
    return std::nullopt;
  }
  PaymentsEvent event;
  v1::PayoutStarted& started = *event.mutable_payout_started();
  started.set_payout_id(payout_id);
  started.set_expert_id(expert_id);
  *started.mutable_amount() = Minor(currency, amount);
  for (v1::Transfer& transfer : attempt.taken) *started.add_transfers() = std::move(transfer);
  return event;
}

// The processor paid out (the pending transfer posts) or refused (voided:
// the money stays payable).
Events SettlePayout(const v1::PaymentsState& state, const v1::ProcessorIntentRecorded& intent,
                    const v1::RecordProcessorOutcome& outcome, absl::Time now) {
  const bool paid = outcome.outcome() == v1::INTENT_OUTCOME_SUCCEEDED;
  const std::string payout_id = intent.intent_id().substr(sizeof("payout:") - 1);
  auto open_payout = state.open_payouts().find(payout_id);
  if (open_payout == state.open_payouts().end()) return {};
  const std::string pending = absl::StrCat("payout:", payout_id);
  const std::string& expert = open_payout->second.expert_id();
  const int64_t amount = open_payout->second.amount().amount_minor();
  std::vector<v1::Transfer> transfers = {
      Settle(absl::StrCat(paid ? "payout-post:" : "payout-void:", payout_id), pending,
             paid ? amount : 0, pending)};
  // A refused payout's money is back in the payable: what the expert owes
  // (a refund that took it while it was on its way, say) is settled first.
  const int64_t owed = Owed(state, expert);
  if (!paid && owed > 0) {
    transfers.push_back(Move(absl::StrCat("payout-recover:", payout_id), ExpertPayable(expert),
                             ExpertOwed(expert), std::min(owed, amount), 0, pending));
  }
  Attempt attempt(state);
  attempt.Take(transfers, now);
  PaymentsEvent settled;
  v1::PayoutSettled& done = *settled.mutable_payout_settled();
  done.set_payout_id(payout_id);
  done.set_expert_id(open_payout->second.expert_id());
  done.set_paid(paid);
  done.set_detail(outcome.detail());
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  return {settled};
}

// The processor charged a sponsor: the money goes into its budget.
Events FundBudget(const v1::PaymentsState& state, const v1::ProcessorIntentRecorded& intent,
                  absl::Time now) {
  Attempt attempt(state);
  const std::string funding = intent.intent_id().substr(sizeof("fund:") - 1);
  if (!attempt.Take({Move(absl::StrCat("funding:", funding), kCashAccount,
                          SponsorBudget(intent.reference()), intent.amount().amount_minor(), 0,
                          absl::StrCat("funding:", funding))},
                    now)) {
    return {};
  }
  PaymentsEvent funded;
  v1::SponsorBudgetFunded& done = *funded.mutable_sponsor_budget_funded();
  done.set_funding_id(funding);
  done.set_sponsor_id(intent.reference());
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  return {funded};
}

// A charge or payout intent recorded before (open, or answered at any
// time): a retry of its command, even after the dedupe window, does
// nothing.
bool IntentKnown(const v1::PaymentsState& state, const std::string& intent_id) {
  return state.open_intents().contains(intent_id) || state.settled_intents().contains(intent_id);
}

// The session a command is about, if it is about one.
const std::string* SessionOf(const PaymentsCommand& command) {
  switch (command.body_case()) {
    case PaymentsCommand::kHoldSession:
      return &command.hold_session().session_id();
    case PaymentsCommand::kCaptureSession:
      return &command.capture_session().session_id();
    case PaymentsCommand::kVoidSession:
      return &command.void_session().session_id();
    case PaymentsCommand::kRefundSession:
      return &command.refund_session().session_id();
    case PaymentsCommand::kChargeLateCancellation:
      return &command.charge_late_cancellation().session_id();
    default:
      return nullptr;
  }
}


// Keeps `earnings` in step with one session: listed under its expert
// while CAPTURED, not otherwise.
void IndexEarnings(v1::PaymentsState& state, const std::string& session,
                   const v1::SessionMoney& money) {
  auto& earnings = *state.mutable_earnings();
  if (money.status() == v1::SESSION_MONEY_STATUS_CAPTURED) {
    (*earnings[money.hold().expert_id()].mutable_captured())[session] = money.captured_at();
    return;
  }
  auto index = earnings.find(money.hold().expert_id());
  if (index == earnings.end()) return;
  index->second.mutable_captured()->erase(session);
  if (index->second.captured().empty()) earnings.erase(index);
}

// Builds `earnings` from `sessions` (a state from before the index).
void IndexEarnings(v1::PaymentsState& state) {
  for (const auto& [id, money] : state.sessions()) IndexEarnings(state, id, money);
  state.set_earnings_indexed(true);
}

// Sessions settled before `cutoff` leave the state (the refund window is
// shorter than the dedupe window); a captured one leaves its expert's share
// in `archived_earnings`. Held and authorising sessions stay.
void ForgetSettledSessions(v1::PaymentsState& state, absl::Time cutoff) {
  auto& sessions = *state.mutable_sessions();
  std::vector<std::string> settled;
  for (const auto& [id, money] : sessions) {
    if (money.status() == v1::SESSION_MONEY_STATUS_AUTHORISING ||
        money.status() == v1::SESSION_MONEY_STATUS_HELD ||
        money.status() == v1::SESSION_MONEY_STATUS_CAPTURING ||
        money.status() == v1::SESSION_MONEY_STATUS_REFUNDING ||
        money.status() == v1::SESSION_MONEY_STATUS_REFUND_FAILED ||
        FromProtoTime(money.updated_at()) >= cutoff) {
      continue;
    }
    if (money.status() == v1::SESSION_MONEY_STATUS_CAPTURED) {
      (*state.mutable_archived_earnings())[money.hold().expert_id()] +=
          money.captured_minor() - money.captured_fee_minor();
    }
    settled.push_back(id);
  }
  for (const std::string& id : settled) {
    v1::SessionMoney gone = sessions.at(id);
    gone.set_status(v1::SESSION_MONEY_STATUS_UNSPECIFIED);
    IndexEarnings(state, id, gone);
    sessions.erase(id);
  }
}

}  // namespace

const std::string* SessionOf(const v1::PaymentsEvent& event) {
  switch (event.body_case()) {
    case PaymentsEvent::kProcessorIntentRecorded:
      return event.processor_intent_recorded().kind() == v1::INTENT_KIND_AUTHORISE
                 ? &event.processor_intent_recorded().reference()
                 : nullptr;
    case PaymentsEvent::kHoldPlaced:
      return &event.hold_placed().session_id();
    case PaymentsEvent::kHoldFailed:
      return &event.hold_failed().session_id();
    case PaymentsEvent::kSettlementQueued:
      return &event.settlement_queued().session_id();
    case PaymentsEvent::kSessionCaptured:
      return &event.session_captured().session_id();
    case PaymentsEvent::kSessionVoided:
      return &event.session_voided().session_id();
    case PaymentsEvent::kSessionRefunded:
      return &event.session_refunded().session_id();
    case PaymentsEvent::kCaptureRequested:
      return &event.capture_requested().session_id();
    case PaymentsEvent::kCaptureFailed:
      return &event.capture_failed().session_id();
    case PaymentsEvent::kRefundStarted:
      return &event.refund_started().session_id();
    case PaymentsEvent::kRefundFailed:
      return &event.refund_failed().session_id();
    case PaymentsEvent::kSessionUnpaid:
      return &event.session_unpaid().session_id();
    default:
      return nullptr;
  }
}

int64_t AvailableEarnings(const v1::PaymentsState& state, const std::string& expert_id,
                          absl::Time now, absl::Duration refund_window) {
  int64_t earned = 0;
  auto add = [&](const v1::SessionMoney& money) {
    if (money.status() == v1::SESSION_MONEY_STATUS_CAPTURED &&
        FromProtoTime(money.captured_at()) <= now - refund_window) {
      earned += money.captured_minor() - money.captured_fee_minor();
    }
  };
  if (state.earnings_indexed()) {
    auto index = state.earnings().find(expert_id);
    if (index != state.earnings().end()) {
      for (const auto& [session, captured_at] : index->second.captured()) {
        auto money = state.sessions().find(session);
        if (money != state.sessions().end()) add(money->second);
      }
    }
  } else {
    for (const auto& [id, money] : state.sessions()) {
      if (money.hold().expert_id() == expert_id) add(money);
    }
  }
  auto value = [&](const google::protobuf::Map<std::string, int64_t>& map) -> int64_t {
    auto found = map.find(expert_id);
    return found == map.end() ? 0 : found->second;
  };
  earned += value(state.archived_earnings()) + value(state.refund_absorbed());
  earned -= value(state.paid_out()) + value(state.paying_out());
  // Never more than the payable holds (a refund after a payout took the rest).
  return std::clamp<int64_t>(earned, 0, std::max<int64_t>(0, Spendable(state, expert_id)));
}

std::string LedgerId(const std::string& currency_code) {
  return absl::StrCat(kLedgerPrefix, currency_code);
}
std::string ExpertPayable(const std::string& expert_id) {
  return absl::StrCat("expert:", expert_id, ":payable");
}
std::string SponsorBudget(const std::string& sponsor_id) {
  return absl::StrCat("sponsor:", sponsor_id, ":budget");
}
std::string ExpertOwed(const std::string& expert_id) {
  return absl::StrCat("expert:", expert_id, ":owed");
}
uint32_t FlagsFor(const std::string& account_id) {
  if (account_id == kCashAccount) return 0;
  if (account_id == kRefundLossesAccount || absl::EndsWith(account_id, ":owed")) {
    return v1::ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS;
  }
  return v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS;
}

absl::StatusOr<Events> PaymentsDomain::Decide(const v1::PaymentsState& state,
                                              const PaymentsCommand& command,
                                              const es::DecideContext& context) {
  if (!absl::StartsWith(context.aggregate_id, kLedgerPrefix)) {
    return errors::InvalidField("meta.aggregate_id", "is not a ledger id");
  }
  const std::string currency = context.aggregate_id.substr(sizeof(kLedgerPrefix) - 1);
  auto session_of = [&](const std::string& id) -> const v1::SessionMoney* {
    auto found = state.sessions().find(id);
    return found == state.sessions().end() ? nullptr : &found->second;
  };
  // Settled sessions leave the state a dedupe window after their last
  // change; an event older than that (a reactor replaying from the
  // beginning) may be about one: acting on it could move its money twice.
  if (const std::string* session = SessionOf(command);
      session != nullptr && session_of(*session) == nullptr && context.meta != nullptr &&
      context.meta->has_source_occurred_at() &&
      FromProtoTime(context.meta->source_occurred_at()) <
          context.now - kDedupeWindow + kClockSkewAllowance) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", *session, ": the event this command answers is older than payments "
        "remembers settled sessions; not acted on, so that no money moves twice"));
  }
  PaymentsEvent event;
  switch (command.body_case()) {
    case PaymentsCommand::kRecordSponsorProgram: {
      const v1::RecordSponsorProgram& program = command.record_sponsor_program();
      v1::SponsorProgramRecorded& recorded = *event.mutable_sponsor_program_recorded();
      recorded.set_program_id(program.program_id());
      recorded.set_sponsor_id(program.sponsor_id());
      if (program.sponsor_id().empty()) {
        auto known = state.programs().find(program.program_id());
        if (known == state.programs().end()) {
          return errors::InvalidField("record_sponsor_program.sponsor_id", "is required");
        }
        recorded.set_sponsor_id(known->second.sponsor_id());
      }
      recorded.set_free_sessions_per_person(program.free_sessions_per_person());
      return Events{event};
    }
    case PaymentsCommand::kHoldSession: {
      const v1::HoldSession& hold = command.hold_session();
      const v1::SessionMoney* waiting = session_of(hold.session_id());
      if (waiting != nullptr && waiting->status() != v1::SESSION_MONEY_STATUS_AWAITING_HOLD) {
        return Events{};  // a repeated match
      }
      if (hold.session_id().empty() || hold.expert_id().empty() || hold.person_id().empty()) {
        return errors::InvalidField("hold_session", "session, person and expert are required");
      }
      if (hold.max_amount().currency_code() != currency || hold.max_amount().amount_minor() < 0) {
        return errors::InvalidField("hold_session.max_amount",
                                    absl::StrCat("must be a non-negative amount in ", currency));
      }
      if (hold.commission_bps() < 0 || hold.commission_bps() > 10000) {
        return errors::InvalidField("hold_session.commission_bps", "must be 0 to 10000");
      }
      if (waiting != nullptr && waiting->void_waiting()) {
        event.mutable_session_voided()->set_session_id(hold.session_id());
        event.mutable_session_voided()->set_reason("cancelled before the hold was placed");
        return Events{event};
      }
      if (!hold.sponsor_program_id().empty()) {
        auto program = state.programs().find(hold.sponsor_program_id());
        if (program == state.programs().end()) {
          return FailHold(state, hold, "the sponsor program is not known to payments");
        }
        auto used = state.sponsored_sessions().find(
            absl::StrCat(hold.sponsor_program_id(), "/", hold.person_id()));
        if (used != state.sponsored_sessions().end() &&
            used->second >= program->second.free_sessions_per_person()) {
          return FailHold(state, hold, "the person has used the program's free sessions");
        }
        const std::string& sponsor = program->second.sponsor_id();
        return SettleWaiting(state, hold.session_id(),
                             {Place(state, hold, SponsorBudget(sponsor), sponsor, context.now)},
                             context.now);
      }
      PaymentsEvent intent = Intent(absl::StrCat("auth:", hold.session_id()),
                                    v1::INTENT_KIND_AUTHORISE, hold.max_amount(),
                                    hold.session_id());
      *intent.mutable_processor_intent_recorded()->mutable_hold() = hold;
      return Events{intent};
    }
    case PaymentsCommand::kRecordProcessorOutcome: {
      const v1::RecordProcessorOutcome& outcome = command.record_processor_outcome();
      auto open = state.open_intents().find(outcome.intent_id());
      // A duplicate or late answer changes nothing.
      if (open == state.open_intents().end()) return Events{};
      if (outcome.outcome() != v1::INTENT_OUTCOME_SUCCEEDED &&
          outcome.outcome() != v1::INTENT_OUTCOME_DECLINED) {
        return errors::InvalidField("record_processor_outcome.outcome", "is required");
      }
      const v1::ProcessorIntentRecorded& intent = open->second;
      v1::ProcessorOutcomeRecorded& recorded = *event.mutable_processor_outcome_recorded();
      recorded.set_intent_id(outcome.intent_id());
      recorded.set_outcome(outcome.outcome());
      recorded.set_detail(outcome.detail());
      Events events{event};
      const bool succeeded = outcome.outcome() == v1::INTENT_OUTCOME_SUCCEEDED;
      const v1::SessionMoney* money = session_of(intent.reference());
      auto and_then = [&](absl::StatusOr<Events> more) -> absl::StatusOr<Events> {
        if (!more.ok()) return more.status();
        events.insert(events.end(), more->begin(), more->end());
        return events;
      };
      switch (intent.kind()) {
        case v1::INTENT_KIND_AUTHORISE:
          if (!succeeded) {
            return and_then(FailHold(state, intent.hold(),
                                     absl::StrCat("the card was declined: ", outcome.detail())));
          }
          events.push_back(Place(state, intent.hold(), kCashAccount, "", context.now));
          return SettleWaiting(state, intent.reference(), std::move(events), context.now);
        case v1::INTENT_KIND_CAPTURE:
          // A capture the earlier code posted when asked (its intent still
          // open), refunded since or not: the decline takes it back.
          if (money != nullptr && !succeeded &&
              (money->status() == v1::SESSION_MONEY_STATUS_CAPTURED ||
               money->status() == v1::SESSION_MONEY_STATUS_REFUNDING ||
               money->status() == v1::SESSION_MONEY_STATUS_REFUND_FAILED ||
               (money->status() == v1::SESSION_MONEY_STATUS_REFUNDED &&
                money->refund_attempt() == 0))) {
            return and_then(TakeBackCapture(
                state, *money,
                absl::StrCat("the processor declined the capture: ", outcome.detail()),
                context.now));
          }
          if (money == nullptr || money->status() != v1::SESSION_MONEY_STATUS_CAPTURING) {
            return events;
          }
          if (!succeeded) {
            return and_then(FailCapture(
                state, *money, absl::StrCat("the processor declined the capture: ", outcome.detail()),
                context.now));
          }
          {
            absl::StatusOr<Events> posted =
                PostCapture(state, *money, money->capturing(), intent.intent_id(), context.now);
            if (!posted.ok()) return posted.status();
            events.insert(events.end(), posted->begin(), posted->end());
          }
          return RefundWaiting(state, intent.reference(), std::move(events), context.now);
        case v1::INTENT_KIND_REFUND:
          if (money != nullptr && !succeeded &&
              money->status() == v1::SESSION_MONEY_STATUS_REFUNDED && money->refund_attempt() == 0) {
            return and_then(TakeBackRefund(
                state, *money,
                absl::StrCat("the processor declined the refund: ", outcome.detail()),
                context.now));
          }
          if (money == nullptr || money->status() != v1::SESSION_MONEY_STATUS_REFUNDING) {
            return events;
          }
          if (!succeeded) {
            PaymentsEvent failed;
            v1::RefundFailed& refund_failed = *failed.mutable_refund_failed();
            refund_failed.set_session_id(intent.reference());
            *refund_failed.mutable_amount() = intent.amount();
            refund_failed.set_reason(
                absl::StrCat("the processor declined the refund: ", outcome.detail()));
            refund_failed.set_attempt(money->refund_attempt());
            events.push_back(failed);
            return events;
          }
          return and_then(
              PostRefund(state, *money, money->refunding(), intent.intent_id(), context.now));
        case v1::INTENT_KIND_PAYOUT:
          return and_then(SettlePayout(state, intent, outcome, context.now));
        case v1::INTENT_KIND_CHARGE:
          if (succeeded) return and_then(FundBudget(state, intent, context.now));
          return events;
        default:
          return events;
      }
    }
    case PaymentsCommand::kCaptureSession: {
      const v1::CaptureSession& capture = command.capture_session();
      const v1::SessionMoney* money = session_of(capture.session_id());
      switch (money == nullptr ? v1::SESSION_MONEY_STATUS_AWAITING_HOLD : money->status()) {
        case v1::SESSION_MONEY_STATUS_AWAITING_HOLD:
        case v1::SESSION_MONEY_STATUS_AUTHORISING:
          *event.mutable_settlement_queued()->mutable_capture() = capture;
          return Queued(event, capture.session_id());
        case v1::SESSION_MONEY_STATUS_HELD: {
          absl::StatusOr<Events> captured = Capture(state, *money, capture, context.now);
          if (!captured.ok()) return captured;
          return RefundWaiting(state, capture.session_id(), std::move(*captured), context.now);
        }
        case v1::SESSION_MONEY_STATUS_FAILED:
          // The hold failed while the session ran: its minutes went unpaid.
          if (money->unpaid_minor() > 0 || capture.amount().amount_minor() <= 0) return Events{};
          return Events{Unpaid(capture.session_id(), capture.amount(), money->failure())};
        case v1::SESSION_MONEY_STATUS_CAPTURING:
        case v1::SESSION_MONEY_STATUS_CAPTURED:
        case v1::SESSION_MONEY_STATUS_CAPTURE_FAILED:
        case v1::SESSION_MONEY_STATUS_REFUNDING:
        case v1::SESSION_MONEY_STATUS_REFUND_FAILED:
        case v1::SESSION_MONEY_STATUS_REFUNDED:
          return Events{};  // captured at most once
        default:
          return absl::FailedPreconditionError(absl::StrCat(
              "nothing to capture: ", v1::SessionMoneyStatus_Name(money->status())));
      }
    }
    case PaymentsCommand::kChargeLateCancellation: {
      // Matching's booking and its cancellation come in order: the hold is known.
      const v1::SessionMoney* money = session_of(command.charge_late_cancellation().session_id());
      if (money == nullptr) return absl::FailedPreconditionError("no hold for this session");
      v1::CaptureSession charge;
      charge.set_session_id(command.charge_late_cancellation().session_id());
      *charge.mutable_amount() = money->hold().minimum_charge();
      charge.mutable_amount()->set_amount_minor(std::min(
          money->hold().minimum_charge().amount_minor(), money->hold().max_amount().amount_minor()));
      charge.mutable_amount()->set_currency_code(currency);
      switch (money->status()) {
        case v1::SESSION_MONEY_STATUS_AUTHORISING:
          *event.mutable_settlement_queued()->mutable_capture() = charge;
          return Queued(event, charge.session_id());
        case v1::SESSION_MONEY_STATUS_HELD:
          return Capture(state, *money, charge, context.now);
        default:
          return Events{};
      }
    }
    case PaymentsCommand::kVoidSession: {
      const v1::VoidSession& void_session = command.void_session();
      const v1::SessionMoney* money = session_of(void_session.session_id());
      switch (money == nullptr ? v1::SESSION_MONEY_STATUS_AWAITING_HOLD : money->status()) {
        case v1::SESSION_MONEY_STATUS_AWAITING_HOLD:
        case v1::SESSION_MONEY_STATUS_AUTHORISING:
          event.mutable_settlement_queued()->set_void_(true);
          return Queued(event, void_session.session_id());
        case v1::SESSION_MONEY_STATUS_HELD:
          return Void(state, *money, void_session.reason(), context.now);
        case v1::SESSION_MONEY_STATUS_CAPTURING:
        case v1::SESSION_MONEY_STATUS_CAPTURED:
        case v1::SESSION_MONEY_STATUS_REFUNDING:
        case v1::SESSION_MONEY_STATUS_REFUND_FAILED:
        case v1::SESSION_MONEY_STATUS_REFUNDED:
          return absl::FailedPreconditionError("the session's money was captured; refund it");
        default:
          return Events{};  // failed or voided already
      }
    }
    case PaymentsCommand::kRefundSession: {
      const v1::RefundSession& refund = command.refund_session();
      const v1::SessionMoney* money = session_of(refund.session_id());
      // Sessions asks for a refund after the end, so its capture came first.
      if (money == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "session ", refund.session_id(),
            ": payments knows nothing of it to refund (its capture never came, or it was "
            "settled longer ago than payments remembers)"));
      }
      switch (money->status()) {
        case v1::SESSION_MONEY_STATUS_CAPTURED:
          return Refund(state, *money, refund, 1, context.now);
        case v1::SESSION_MONEY_STATUS_REFUNDING:
        case v1::SESSION_MONEY_STATUS_REFUND_FAILED:
        case v1::SESSION_MONEY_STATUS_REFUNDED:
          return Events{};
        case v1::SESSION_MONEY_STATUS_FAILED:
        case v1::SESSION_MONEY_STATUS_CAPTURE_FAILED:
          return Events{};  // nothing was taken: nothing to give back
        case v1::SESSION_MONEY_STATUS_AWAITING_HOLD:
        case v1::SESSION_MONEY_STATUS_AUTHORISING:
        case v1::SESSION_MONEY_STATUS_HELD:
        case v1::SESSION_MONEY_STATUS_CAPTURING:
          // Sessions asks for a refund only after the end: the capture
          // waits (or is at the processor); the refund follows it.
          if (money->has_refund_waiting()) return Events{};
          *event.mutable_settlement_queued()->mutable_refund() = refund;
          return Queued(event, refund.session_id());
        default:
          return absl::FailedPreconditionError("only a captured session is refunded");
      }
    }
    case PaymentsCommand::kRetryRefund: {
      const std::string& session = command.retry_refund().session_id();
      const v1::SessionMoney* money = session_of(session);
      if (money == nullptr || money->status() != v1::SESSION_MONEY_STATUS_REFUND_FAILED) {
        return absl::FailedPreconditionError(absl::StrCat(
            "only a refund the processor declined is retried; the session's money is ",
            money == nullptr ? "not known" : v1::SessionMoneyStatus_Name(money->status())));
      }
      // Before the refund: a payout may have taken the share since.
      return Refund(state, *money, money->refunding(), money->refund_attempt() + 1, context.now);
    }
    case PaymentsCommand::kRequestPayout: {
      const v1::RequestPayout& request = command.request_payout();
      if (request.payout_id().empty() || request.expert_id().empty()) {
        return errors::InvalidField("request_payout", "payout_id and expert_id are required");
      }
      if (IntentKnown(state, absl::StrCat("payout:", request.payout_id()))) return Events{};
      absl::Duration window = FromProtoDuration(request.refund_window());
      int64_t available = AvailableEarnings(state, request.expert_id(), context.now, window);
      std::optional<PaymentsEvent> started =
          StartPayout(state, request.payout_id(), request.expert_id(), currency,
                      request.minimum_minor(), window, context.now);
      if (!started) {
        return absl::FailedPreconditionError(absl::StrCat(
            "available earnings (", available, ") are below the minimum payout (",
            request.minimum_minor(), ")"));
      }
      const v1::PayoutStarted& payout = started->payout_started();
      return Events{*started, Intent(absl::StrCat("payout:", payout.payout_id()),
                                     v1::INTENT_KIND_PAYOUT, payout.amount(), payout.expert_id())};
    }
    case PaymentsCommand::kRunPayoutBatch: {
      const v1::RunPayoutBatch& batch = command.run_payout_batch();
      std::set<std::string> experts;
      if (state.earnings_indexed()) {
        for (const auto& [expert, index] : state.earnings()) experts.insert(expert);
      } else {
        for (const auto& [id, money] : state.sessions()) {
          if (money.status() == v1::SESSION_MONEY_STATUS_CAPTURED) {
            experts.insert(money.hold().expert_id());
          }
        }
      }
      for (const auto& [expert, earned] : state.archived_earnings()) experts.insert(expert);
      for (const auto& [expert, absorbed] : state.refund_absorbed()) experts.insert(expert);
      Events events;
      for (const std::string& expert : experts) {
        std::string payout_id = absl::StrCat(batch.batch_id(), "/", expert);
        if (IntentKnown(state, absl::StrCat("payout:", payout_id))) continue;
        std::optional<PaymentsEvent> started =
            StartPayout(state, payout_id, expert, currency, batch.minimum_minor(),
                        FromProtoDuration(batch.refund_window()), context.now);
        if (!started) continue;
        events.push_back(*started);
        events.push_back(Intent(absl::StrCat("payout:", payout_id), v1::INTENT_KIND_PAYOUT,
                                started->payout_started().amount(), expert));
      }
      return events;
    }
    case PaymentsCommand::kFundSponsorBudget: {
      const v1::FundSponsorBudget& fund = command.fund_sponsor_budget();
      if (fund.funding_id().empty() || fund.sponsor_id().empty()) {
        return errors::InvalidField("fund_sponsor_budget", "funding_id and sponsor_id are required");
      }
      if (fund.amount().currency_code() != currency || fund.amount().amount_minor() <= 0) {
        return errors::InvalidField("fund_sponsor_budget.amount",
                                    absl::StrCat("must be a positive amount in ", currency));
      }
      if (IntentKnown(state, absl::StrCat("fund:", fund.funding_id()))) return Events{};
      return Events{Intent(absl::StrCat("fund:", fund.funding_id()), v1::INTENT_KIND_CHARGE,
                           fund.amount(), fund.sponsor_id())};
    }
    default:
      return errors::InvalidField("body", "a command is required");
  }
}

void PaymentsDomain::Apply(v1::PaymentsState& state, const PaymentsEvent& event) {
  const absl::Time at = FromProtoTime(event.meta().occurred_at());
  auto apply_transfers = [&](const auto& transfers) {
    for (const v1::Transfer& transfer : transfers) {
      for (const std::string& id : {transfer.debit_account_id(), transfer.credit_account_id()}) {
        Ledger(*state.mutable_ledger()).OpenAccount(id, FlagsFor(id));
      }
      Ledger::ApplyTaken(*state.mutable_ledger(), transfer);
    }
  };
  auto& sessions = *state.mutable_sessions();
  switch (event.body_case()) {
    case PaymentsEvent::kSponsorProgramRecorded:
      (*state.mutable_programs())[event.sponsor_program_recorded().program_id()] =
          event.sponsor_program_recorded();
      break;
    case PaymentsEvent::kProcessorIntentRecorded: {
      const v1::ProcessorIntentRecorded& intent = event.processor_intent_recorded();
      (*state.mutable_open_intents())[intent.intent_id()] = intent;
      if (intent.kind() == v1::INTENT_KIND_AUTHORISE) {
        v1::SessionMoney& money = sessions[intent.reference()];
        money.set_status(v1::SESSION_MONEY_STATUS_AUTHORISING);
        *money.mutable_hold() = intent.hold();
        money.set_authorisation_id(intent.intent_id());
      }
      break;
    }
    case PaymentsEvent::kProcessorOutcomeRecorded: {
      const std::string& intent_id = event.processor_outcome_recorded().intent_id();
      auto open = state.open_intents().find(intent_id);
      // Batch payouts ("payout:<batch>/<expert>") are named after their
      // interval and cannot come again; remembering them would grow the
      // state by an entry per expert and batch.
      if (open != state.open_intents().end() &&
          (open->second.kind() == v1::INTENT_KIND_CHARGE ||
           (open->second.kind() == v1::INTENT_KIND_PAYOUT &&
            !absl::StrContains(intent_id, "/")))) {
        (*state.mutable_settled_intents())[intent_id] = true;
      }
      state.mutable_open_intents()->erase(intent_id);
      break;
    }
    case PaymentsEvent::kHoldPlaced: {
      const v1::HoldPlaced& placed = event.hold_placed();
      apply_transfers(placed.transfers());
      v1::SessionMoney& money = sessions[placed.session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_HELD);
      *money.mutable_hold() = placed.hold();
      money.set_sponsor_id(placed.sponsor_id());
      for (const v1::Transfer& transfer : placed.transfers()) {
        if (absl::StartsWith(transfer.transfer_id(), "hold-share:")) {
          money.set_share_hold_id(transfer.transfer_id());
        } else {
          money.set_fee_hold_id(transfer.transfer_id());
        }
      }
      if (!placed.hold().sponsor_program_id().empty()) {
        ++(*state.mutable_sponsored_sessions())[absl::StrCat(placed.hold().sponsor_program_id(),
                                                              "/", placed.hold().person_id())];
      }
      break;
    }
    case PaymentsEvent::kHoldFailed: {
      v1::SessionMoney& money = sessions[event.hold_failed().session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_FAILED);
      money.set_failure(event.hold_failed().reason());
      if (event.hold_failed().has_hold()) *money.mutable_hold() = event.hold_failed().hold();
      break;
    }
    case PaymentsEvent::kSessionUnpaid: {
      v1::SessionMoney& money = sessions[event.session_unpaid().session_id()];
      money.set_unpaid_minor(event.session_unpaid().amount().amount_minor());
      money.clear_capture_waiting();
      break;
    }
    case PaymentsEvent::kCaptureRequested: {
      v1::SessionMoney& money = sessions[event.capture_requested().session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_CAPTURING);
      money.mutable_capturing()->set_session_id(event.capture_requested().session_id());
      *money.mutable_capturing()->mutable_amount() = event.capture_requested().amount();
      money.clear_capture_waiting();
      break;
    }
    case PaymentsEvent::kCaptureFailed: {
      const v1::CaptureFailed& failed = event.capture_failed();
      apply_transfers(failed.transfers());
      v1::SessionMoney& money = sessions[failed.session_id()];
      for (const v1::Transfer& transfer : failed.transfers()) {
        if (absl::StrContains(transfer.transfer_id(), "-in-flight:")) {
          (*state.mutable_owed_against_payouts())[money.hold().expert_id()] += transfer.amount();
        }
      }
      money.set_status(v1::SESSION_MONEY_STATUS_CAPTURE_FAILED);
      money.set_unpaid_minor(failed.amount().amount_minor());
      money.set_failure(failed.reason());
      money.clear_refund_waiting();  // nothing was taken: nothing to give back
      break;
    }
    case PaymentsEvent::kRefundStarted: {
      const v1::RefundStarted& started = event.refund_started();
      v1::SessionMoney& money = sessions[started.session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_REFUNDING);
      money.mutable_refunding()->set_session_id(started.session_id());
      money.mutable_refunding()->set_reason(started.reason());
      money.mutable_refunding()->set_platform_absorbs_shortfall(
          started.platform_absorbs_shortfall());
      money.set_refund_attempt(started.attempt());
      money.clear_refund_waiting();
      break;
    }
    case PaymentsEvent::kRefundFailed: {
      const v1::RefundFailed& failed = event.refund_failed();
      apply_transfers(failed.transfers());
      v1::SessionMoney& money = sessions[failed.session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_REFUND_FAILED);
      money.set_failure(failed.reason());
      if (!money.has_refunding()) money.mutable_refunding()->set_session_id(failed.session_id());
      money.set_refund_attempt(std::max(money.refund_attempt(), failed.attempt()));
      break;
    }
    case PaymentsEvent::kSettlementQueued: {
      const v1::SettlementQueued& queued = event.settlement_queued();
      v1::SessionMoney& money = sessions[queued.session_id()];
      if (money.status() == v1::SESSION_MONEY_STATUS_UNSPECIFIED) {
        money.set_status(v1::SESSION_MONEY_STATUS_AWAITING_HOLD);
      }
      if (queued.has_capture()) *money.mutable_capture_waiting() = queued.capture();
      if (queued.void_()) money.set_void_waiting(true);
      if (queued.has_refund()) *money.mutable_refund_waiting() = queued.refund();
      break;
    }
    case PaymentsEvent::kSessionCaptured: {
      const v1::SessionCaptured& captured = event.session_captured();
      apply_transfers(captured.transfers());
      v1::SessionMoney& money = sessions[captured.session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_CAPTURED);
      money.set_captured_minor(captured.amount().amount_minor());
      money.set_captured_fee_minor(captured.fee_minor());
      money.clear_capture_waiting();
      *money.mutable_captured_at() = event.meta().occurred_at();
      break;
    }
    case PaymentsEvent::kPayoutStarted: {
      const v1::PayoutStarted& started = event.payout_started();
      apply_transfers(started.transfers());
      (*state.mutable_paying_out())[started.expert_id()] += started.amount().amount_minor();
      (*state.mutable_open_payouts())[started.payout_id()] = started;
      break;
    }
    case PaymentsEvent::kPayoutSettled: {
      const v1::PayoutSettled& settled = event.payout_settled();
      apply_transfers(settled.transfers());
      auto open_payout = state.open_payouts().find(settled.payout_id());
      if (open_payout == state.open_payouts().end()) break;
      int64_t amount = open_payout->second.amount().amount_minor();
      (*state.mutable_paying_out())[settled.expert_id()] -= amount;
      if (auto claimed = state.mutable_owed_against_payouts()->find(settled.expert_id());
          claimed != state.mutable_owed_against_payouts()->end()) {
        claimed->second -= std::min(claimed->second, amount);
        if (claimed->second == 0) state.mutable_owed_against_payouts()->erase(claimed);
      }
      if (settled.paid()) (*state.mutable_paid_out())[settled.expert_id()] += amount;
      state.mutable_open_payouts()->erase(settled.payout_id());
      break;
    }
    case PaymentsEvent::kSessionVoided:
      apply_transfers(event.session_voided().transfers());
      sessions[event.session_voided().session_id()].set_status(v1::SESSION_MONEY_STATUS_VOIDED);
      break;
    case PaymentsEvent::kSessionRefunded: {
      const v1::SessionRefunded& refunded = event.session_refunded();
      apply_transfers(refunded.transfers());
      v1::SessionMoney& money = sessions[refunded.session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_REFUNDED);
      money.clear_refund_waiting();
      const std::string& expert = money.hold().expert_id();
      for (const v1::Transfer& transfer : refunded.transfers()) {
        if (transfer.debit_account_id() == kRefundLossesAccount) {
          (*state.mutable_refund_absorbed())[expert] += transfer.amount();
        }
        if (absl::StrContains(transfer.transfer_id(), "-in-flight:")) {
          (*state.mutable_owed_against_payouts())[expert] += transfer.amount();
        }
      }
      break;
    }
    case PaymentsEvent::kSponsorBudgetFunded:
      apply_transfers(event.sponsor_budget_funded().transfers());
      break;
    case PaymentsEvent::BODY_NOT_SET:
      break;
  }
  if (!state.earnings_indexed()) IndexEarnings(state);
  if (const std::string* session = SessionOf(event); session != nullptr) {
    auto money = sessions.find(*session);
    if (money != sessions.end()) {
      *money->second.mutable_updated_at() = event.meta().occurred_at();
      IndexEarnings(state, *session, money->second);
    }
  }
  // Forgetting walks every id taken: an hour apart at most is often enough.
  if (at - FromProtoTime(state.ledger().pruned_at()) >= absl::Hours(1)) {
    Ledger::ForgetBefore(*state.mutable_ledger(), at - kDedupeWindow);
    ForgetSettledSessions(state, at - kDedupeWindow);
    *state.mutable_ledger()->mutable_pruned_at() = ToProtoTime(at);
  }
}

}  // namespace helpline::payments
