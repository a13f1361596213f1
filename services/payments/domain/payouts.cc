#include "services/payments/domain/payouts.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

// A payout of everything available to `expert_id`, if at least `minimum`.
std::optional<v1::PaymentsEvent> StartPayout(const v1::PaymentsState& state,
                                             const std::string& payout_id,
                                             const std::string& expert_id,
                                             const std::string& currency, int64_t minimum,
                                             absl::Duration window, absl::Time now) {
  int64_t amount = AvailableEarnings(state, expert_id, now, window);
  if (amount <= 0 || amount < minimum) return std::nullopt;
  Attempt attempt(state);
  if (!attempt.Take({Move(absl::StrCat("payout:", payout_id), ExpertPayable(expert_id),
                          kCashAccount, amount, v1::TRANSFER_FLAG_PENDING,
                          absl::StrCat("payout:", payout_id))},
                    now)) {
    return std::nullopt;
  }
  v1::PaymentsEvent event;
  v1::PayoutStarted& started = *event.mutable_payout_started();
  started.set_payout_id(payout_id);
  started.set_expert_id(expert_id);
  *started.mutable_amount() = Minor(currency, amount);
  for (v1::Transfer& transfer : attempt.taken) *started.add_transfers() = std::move(transfer);
  return event;
}

}  // namespace

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

absl::StatusOr<Events> DecideRequestPayout(const v1::PaymentsState& state,
                                           const v1::RequestPayout& request,
                                           const std::string& currency, absl::Time now) {
  if (request.payout_id().empty() || request.expert_id().empty()) {
    return errors::InvalidField("request_payout", "payout_id and expert_id are required");
  }
  if (IntentKnown(state, absl::StrCat("payout:", request.payout_id()))) return Events{};
  absl::Duration window = FromProtoDuration(request.refund_window());
  int64_t available = AvailableEarnings(state, request.expert_id(), now, window);
  std::optional<v1::PaymentsEvent> started =
      StartPayout(state, request.payout_id(), request.expert_id(), currency,
                  request.minimum_minor(), window, now);
  if (!started) {
    return absl::FailedPreconditionError(absl::StrCat(
        "available earnings (", available, ") are below the minimum payout (",
        request.minimum_minor(), ")"));
  }
  const v1::PayoutStarted& payout = started->payout_started();
  return Events{*started, Intent(absl::StrCat("payout:", payout.payout_id()),
                                 v1::INTENT_KIND_PAYOUT, payout.amount(), payout.expert_id())};
}

absl::StatusOr<Events> DecideRunPayoutBatch(const v1::PaymentsState& state,
                                            const v1::RunPayoutBatch& batch,
                                            const std::string& currency, absl::Time now) {
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
    std::optional<v1::PaymentsEvent> started =
        StartPayout(state, payout_id, expert, currency, batch.minimum_minor(),
                    FromProtoDuration(batch.refund_window()), now);
    if (!started) continue;
    events.push_back(*started);
    events.push_back(Intent(absl::StrCat("payout:", payout_id), v1::INTENT_KIND_PAYOUT,
                            started->payout_started().amount(), expert));
  }
  return events;
}

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
  v1::PaymentsEvent settled;
  v1::PayoutSettled& done = *settled.mutable_payout_settled();
  done.set_payout_id(payout_id);
  done.set_expert_id(open_payout->second.expert_id());
  done.set_paid(paid);
  done.set_detail(outcome.detail());
  for (v1::Transfer& transfer : attempt.taken) *done.add_transfers() = std::move(transfer);
  return {settled};
}

void ApplyToPayouts(v1::PaymentsState& state, const v1::PaymentsEvent& event) {
  switch (event.body_case()) {
    case v1::PaymentsEvent::kPayoutStarted: {
      const v1::PayoutStarted& started = event.payout_started();
      ApplyTransfers(state, started.transfers());
      (*state.mutable_paying_out())[started.expert_id()] += started.amount().amount_minor();
      (*state.mutable_open_payouts())[started.payout_id()] = started;
      break;
    }
    case v1::PaymentsEvent::kPayoutSettled: {
      const v1::PayoutSettled& settled = event.payout_settled();
      ApplyTransfers(state, settled.transfers());
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
    default:
      break;
  }
}

}  // namespace helpline::payments
