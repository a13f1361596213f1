#include "services/payments/domain/session_money.h"

#include <algorithm>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/payments/domain/money.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/errors.h"

namespace helpline::payments {
namespace {

using v1::PaymentsEvent;

const v1::SessionMoney* MoneyOf(const v1::PaymentsState& state, const std::string& session) {
  auto found = state.sessions().find(session);
  return found == state.sessions().end() ? nullptr : &found->second;
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

}  // namespace

absl::StatusOr<Events> DecideHold(const v1::PaymentsState& state, const v1::HoldSession& hold,
                                  const std::string& currency, absl::Time now) {
  const v1::SessionMoney* waiting = MoneyOf(state, hold.session_id());
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
    PaymentsEvent event;
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
                         {Place(state, hold, SponsorBudget(sponsor), sponsor, now)}, now);
  }
  PaymentsEvent intent = Intent(absl::StrCat("auth:", hold.session_id()),
                                v1::INTENT_KIND_AUTHORISE, hold.max_amount(), hold.session_id());
  *intent.mutable_processor_intent_recorded()->mutable_hold() = hold;
  return Events{intent};
}

absl::StatusOr<Events> DecideCapture(const v1::PaymentsState& state,
                                     const v1::CaptureSession& capture, absl::Time now) {
  const v1::SessionMoney* money = MoneyOf(state, capture.session_id());
  switch (money == nullptr ? v1::SESSION_MONEY_STATUS_AWAITING_HOLD : money->status()) {
    case v1::SESSION_MONEY_STATUS_AWAITING_HOLD:
    case v1::SESSION_MONEY_STATUS_AUTHORISING: {
      PaymentsEvent event;
      *event.mutable_settlement_queued()->mutable_capture() = capture;
      return Queued(event, capture.session_id());
    }
    case v1::SESSION_MONEY_STATUS_HELD: {
      absl::StatusOr<Events> captured = Capture(state, *money, capture, now);
      if (!captured.ok()) return captured;
      return RefundWaiting(state, capture.session_id(), std::move(*captured), now);
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

absl::StatusOr<Events> DecideLateCancellation(const v1::PaymentsState& state,
                                              const v1::ChargeLateCancellation& late,
                                              const std::string& currency, absl::Time now) {
  // Matching's booking and its cancellation come in order: the hold is known.
  const v1::SessionMoney* money = MoneyOf(state, late.session_id());
  if (money == nullptr) return absl::FailedPreconditionError("no hold for this session");
  v1::CaptureSession charge;
  charge.set_session_id(late.session_id());
  *charge.mutable_amount() = money->hold().minimum_charge();
  charge.mutable_amount()->set_amount_minor(std::min(
      money->hold().minimum_charge().amount_minor(), money->hold().max_amount().amount_minor()));
  charge.mutable_amount()->set_currency_code(currency);
  switch (money->status()) {
    case v1::SESSION_MONEY_STATUS_AUTHORISING: {
      PaymentsEvent event;
      *event.mutable_settlement_queued()->mutable_capture() = charge;
      return Queued(event, charge.session_id());
    }
    case v1::SESSION_MONEY_STATUS_HELD:
      return Capture(state, *money, charge, now);
    default:
      return Events{};
  }
}

absl::StatusOr<Events> DecideVoid(const v1::PaymentsState& state,
                                  const v1::VoidSession& void_session, absl::Time now) {
  const v1::SessionMoney* money = MoneyOf(state, void_session.session_id());
  switch (money == nullptr ? v1::SESSION_MONEY_STATUS_AWAITING_HOLD : money->status()) {
    case v1::SESSION_MONEY_STATUS_AWAITING_HOLD:
    case v1::SESSION_MONEY_STATUS_AUTHORISING: {
      PaymentsEvent event;
      event.mutable_settlement_queued()->set_void_(true);
      return Queued(event, void_session.session_id());
    }
    case v1::SESSION_MONEY_STATUS_HELD:
      return Void(state, *money, void_session.reason(), now);
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

absl::StatusOr<Events> DecideRefund(const v1::PaymentsState& state,
                                    const v1::RefundSession& refund, absl::Time now) {
  const v1::SessionMoney* money = MoneyOf(state, refund.session_id());
  // Sessions asks for a refund after the end, so its capture came first.
  if (money == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", refund.session_id(),
        ": payments knows nothing of it to refund (its capture never came, or it was "
        "settled longer ago than payments remembers)"));
  }
  switch (money->status()) {
    case v1::SESSION_MONEY_STATUS_CAPTURED:
      return Refund(state, *money, refund, 1, now);
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
    case v1::SESSION_MONEY_STATUS_CAPTURING: {
      // Sessions asks for a refund only after the end: the capture
      // waits (or is at the processor); the refund follows it.
      if (money->has_refund_waiting()) return Events{};
      PaymentsEvent event;
      *event.mutable_settlement_queued()->mutable_refund() = refund;
      return Queued(event, refund.session_id());
    }
    default:
      return absl::FailedPreconditionError("only a captured session is refunded");
  }
}

absl::StatusOr<Events> DecideRetryRefund(const v1::PaymentsState& state,
                                         const v1::RetryRefund& retry, absl::Time now) {
  const v1::SessionMoney* money = MoneyOf(state, retry.session_id());
  if (money == nullptr || money->status() != v1::SESSION_MONEY_STATUS_REFUND_FAILED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only a refund the processor declined is retried; the session's money is ",
        money == nullptr ? "not known" : v1::SessionMoneyStatus_Name(money->status())));
  }
  // Before the refund: a payout may have taken the share since.
  return Refund(state, *money, money->refunding(), money->refund_attempt() + 1, now);
}

absl::StatusOr<Events> DecideSessionOutcome(const v1::PaymentsState& state,
                                            const v1::ProcessorIntentRecorded& intent,
                                            const v1::RecordProcessorOutcome& outcome,
                                            Events events, absl::Time now) {
  const bool succeeded = outcome.outcome() == v1::INTENT_OUTCOME_SUCCEEDED;
  const v1::SessionMoney* money = MoneyOf(state, intent.reference());
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
      events.push_back(Place(state, intent.hold(), kCashAccount, "", now));
      return SettleWaiting(state, intent.reference(), std::move(events), now);
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
            state, *money, absl::StrCat("the processor declined the capture: ", outcome.detail()),
            now));
      }
      if (money == nullptr || money->status() != v1::SESSION_MONEY_STATUS_CAPTURING) {
        return events;
      }
      if (!succeeded) {
        return and_then(FailCapture(
            state, *money, absl::StrCat("the processor declined the capture: ", outcome.detail()),
            now));
      }
      {
        absl::StatusOr<Events> posted =
            PostCapture(state, *money, money->capturing(), intent.intent_id(), now);
        if (!posted.ok()) return posted.status();
        events.insert(events.end(), posted->begin(), posted->end());
      }
      return RefundWaiting(state, intent.reference(), std::move(events), now);
    case v1::INTENT_KIND_REFUND:
      if (money != nullptr && !succeeded &&
          money->status() == v1::SESSION_MONEY_STATUS_REFUNDED && money->refund_attempt() == 0) {
        return and_then(TakeBackRefund(
            state, *money, absl::StrCat("the processor declined the refund: ", outcome.detail()),
            now));
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
      return and_then(PostRefund(state, *money, money->refunding(), intent.intent_id(), now));
    default:
      return events;
  }
}

void ApplyToSessionMoney(v1::PaymentsState& state, const v1::PaymentsEvent& event) {
  auto& sessions = *state.mutable_sessions();
  switch (event.body_case()) {
    case PaymentsEvent::kHoldPlaced: {
      const v1::HoldPlaced& placed = event.hold_placed();
      ApplyTransfers(state, placed.transfers());
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
      ApplyTransfers(state, failed.transfers());
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
      ApplyTransfers(state, failed.transfers());
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
      ApplyTransfers(state, captured.transfers());
      v1::SessionMoney& money = sessions[captured.session_id()];
      money.set_status(v1::SESSION_MONEY_STATUS_CAPTURED);
      money.set_captured_minor(captured.amount().amount_minor());
      money.set_captured_fee_minor(captured.fee_minor());
      money.clear_capture_waiting();
      *money.mutable_captured_at() = event.meta().occurred_at();
      break;
    }
    case PaymentsEvent::kSessionVoided:
      ApplyTransfers(state, event.session_voided().transfers());
      sessions[event.session_voided().session_id()].set_status(v1::SESSION_MONEY_STATUS_VOIDED);
      break;
    case PaymentsEvent::kSessionRefunded: {
      const v1::SessionRefunded& refunded = event.session_refunded();
      ApplyTransfers(state, refunded.transfers());
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
    default:
      break;
  }
}

}  // namespace helpline::payments
