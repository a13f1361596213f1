#include "services/payments/domain/payments_domain.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/payments/domain/ledger.h"
#include "services/payments/domain/money_moves.h"
#include "services/payments/domain/payouts.h"
#include "services/payments/domain/session_money.h"
#include "services/payments/domain/sponsor_budgets.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

using v1::PaymentsCommand;
using v1::PaymentsEvent;

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

// The processor answered an intent: recorded once (a duplicate or late
// answer changes nothing), then what the answer settles.
absl::StatusOr<Events> DecideOutcome(const v1::PaymentsState& state,
                                     const v1::RecordProcessorOutcome& outcome, absl::Time now) {
  auto open = state.open_intents().find(outcome.intent_id());
  if (open == state.open_intents().end()) return Events{};
  if (outcome.outcome() != v1::INTENT_OUTCOME_SUCCEEDED &&
      outcome.outcome() != v1::INTENT_OUTCOME_DECLINED) {
    return errors::InvalidField("record_processor_outcome.outcome", "is required");
  }
  const v1::ProcessorIntentRecorded& intent = open->second;
  PaymentsEvent event;
  v1::ProcessorOutcomeRecorded& recorded = *event.mutable_processor_outcome_recorded();
  recorded.set_intent_id(outcome.intent_id());
  recorded.set_outcome(outcome.outcome());
  recorded.set_detail(outcome.detail());
  Events events{event};
  auto and_then = [&](Events more) {
    events.insert(events.end(), more.begin(), more.end());
    return events;
  };
  switch (intent.kind()) {
    case v1::INTENT_KIND_PAYOUT:
      return and_then(SettlePayout(state, intent, outcome, now));
    case v1::INTENT_KIND_CHARGE:
      if (outcome.outcome() == v1::INTENT_OUTCOME_SUCCEEDED) {
        return and_then(FundBudget(state, intent, now));
      }
      return events;
    default:
      return DecideSessionOutcome(state, intent, outcome, std::move(events), now);
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
  const absl::Time now = context.now;
  // Settled sessions leave the state a dedupe window after their last
  // change; an event older than that (a reactor replaying from the
  // beginning) may be about one: acting on it could move its money twice.
  if (const std::string* session = SessionOf(command);
      session != nullptr && !state.sessions().contains(*session) && context.meta != nullptr &&
      context.meta->has_source_occurred_at() &&
      FromProtoTime(context.meta->source_occurred_at()) <
          now - kDedupeWindow + kClockSkewAllowance) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", *session, ": the event this command answers is older than payments "
        "remembers settled sessions; not acted on, so that no money moves twice"));
  }
  switch (command.body_case()) {
    case PaymentsCommand::kRecordSponsorProgram:
      return DecideRecordSponsorProgram(state, command.record_sponsor_program());
    case PaymentsCommand::kFundSponsorBudget:
      return DecideFundSponsorBudget(state, command.fund_sponsor_budget(), currency);
    case PaymentsCommand::kHoldSession:
      return DecideHold(state, command.hold_session(), currency, now);
    case PaymentsCommand::kCaptureSession:
      return DecideCapture(state, command.capture_session(), now);
    case PaymentsCommand::kChargeLateCancellation:
      return DecideLateCancellation(state, command.charge_late_cancellation(), currency, now);
    case PaymentsCommand::kVoidSession:
      return DecideVoid(state, command.void_session(), now);
    case PaymentsCommand::kRefundSession:
      return DecideRefund(state, command.refund_session(), now);
    case PaymentsCommand::kRetryRefund:
      return DecideRetryRefund(state, command.retry_refund(), now);
    case PaymentsCommand::kRecordProcessorOutcome:
      return DecideOutcome(state, command.record_processor_outcome(), now);
    case PaymentsCommand::kRequestPayout:
      return DecideRequestPayout(state, command.request_payout(), currency, now);
    case PaymentsCommand::kRunPayoutBatch:
      return DecideRunPayoutBatch(state, command.run_payout_batch(), currency, now);
    default:
      return errors::InvalidField("body", "a command is required");
  }
}

void PaymentsDomain::Apply(v1::PaymentsState& state, const PaymentsEvent& event) {
  const absl::Time at = FromProtoTime(event.meta().occurred_at());
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
    case PaymentsEvent::kSponsorBudgetFunded:
      ApplyTransfers(state, event.sponsor_budget_funded().transfers());
      break;
    case PaymentsEvent::kPayoutStarted:
    case PaymentsEvent::kPayoutSettled:
      ApplyToPayouts(state, event);
      break;
    case PaymentsEvent::kHoldPlaced:
    case PaymentsEvent::kHoldFailed:
    case PaymentsEvent::kSessionUnpaid:
    case PaymentsEvent::kCaptureRequested:
    case PaymentsEvent::kCaptureFailed:
    case PaymentsEvent::kRefundStarted:
    case PaymentsEvent::kRefundFailed:
    case PaymentsEvent::kSettlementQueued:
    case PaymentsEvent::kSessionCaptured:
    case PaymentsEvent::kSessionVoided:
    case PaymentsEvent::kSessionRefunded:
      ApplyToSessionMoney(state, event);
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
