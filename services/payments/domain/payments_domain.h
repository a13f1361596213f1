#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/payments/v1/state.pb.h"
#include "services/runtime/eventsourcing/domain.h"

// Payments' aggregate, one per currency ("ledger:EUR"): the ledger and the
// money flows that move it (docs/architecture.md §6), decided and applied purely.
namespace helpline::payments {

inline constexpr char kLedgerPrefix[] = "ledger:";
// Transfer ids and settled sessions are remembered (for retries and
// audits) this long; the refund window must be shorter.
inline constexpr absl::Duration kDedupeWindow = absl::Hours(24 * 7);
// How far apart two services' clocks may be: a reactor's command whose
// event is older than the dedupe window less this is refused.
inline constexpr absl::Duration kClockSkewAllowance = absl::Hours(1);
inline constexpr char kCashAccount[] = "cash:psp";
inline constexpr char kCommissionAccount[] = "platform:commission";
// Refunds after a payout that the platform absorbed instead of the expert.
inline constexpr char kRefundLossesAccount[] = "platform:refund_losses";

std::string LedgerId(const std::string& currency_code);
std::string ExpertPayable(const std::string& expert_id);
std::string SponsorBudget(const std::string& sponsor_id);
// What an expert owes back: refunds after a payout beyond their payable,
// recovered from their next captured shares.
std::string ExpertOwed(const std::string& expert_id);
// The balance flags an account gets, from its id: the processor's cash
// account has none; what the expert owes and the platform's refund losses
// only grow by debits (they never owe the other way); the rest must not go
// negative.
uint32_t FlagsFor(const std::string& account_id);

// The session a payments event is about (nullptr if none).
const std::string* SessionOf(const v1::PaymentsEvent& event);

// An expert's captured shares older than `refund_window` at `now`, minus
// what is paid out or on its way.
int64_t AvailableEarnings(const v1::PaymentsState& state, const std::string& expert_id,
                          absl::Time now, absl::Duration refund_window);

struct PaymentsDomain {
  using Command = helpline::payments::v1::PaymentsCommand;
  using Event = helpline::payments::v1::PaymentsEvent;
  using State = helpline::payments::v1::PaymentsState;

  static absl::StatusOr<std::vector<Event>> Decide(const State& state, const Command& command,
                                                   const es::DecideContext& context);
  static void Apply(State& state, const Event& event);
};

inline const es::AggregateType& PaymentsType() {
  static const es::TypedAggregate<PaymentsDomain> type;
  return type;
}

}  // namespace helpline::payments
