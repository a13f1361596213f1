#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "helpline/payments/v1/ledger.pb.h"

// The ledger's rules (ledger.proto says what it models), pure: decide runs
// CreateTransfers on a working copy of the state and records the transfers
// it took, resolved; Apply and replay run ApplyTaken on them.
namespace helpline::payments {

// The void transfer a timed-out pending transfer gets: "timeout:<pending id>".
std::string TimeoutTransferId(const std::string& pending_id);

class Ledger {
 public:
  explicit Ledger(v1::LedgerState& state) : state_(state) {}

  // Opens an account; false if one with that id exists (with other flags).
  bool OpenAccount(const std::string& account_id, uint32_t flags);

  // Takes `transfers` in order at `now`, a linked chain all or nothing; one
  // result per transfer (OK or EXISTS for a retry of the same transfer).
  // `taken` gets each transfer applied, resolved: timestamp set, and for a
  // post or void the pending transfer's accounts and the amount moved.
  std::vector<v1::TransferResult> CreateTransfers(const std::vector<v1::Transfer>& transfers,
                                                  absl::Time now,
                                                  std::vector<v1::Transfer>* taken);

  // Pending transfers whose timeout has passed at `now`, soonest first.
  std::vector<std::string> Expired(absl::Time now) const;
  // When the next pending transfer times out.
  std::optional<absl::Time> NextTimeout() const;

  // The balance changes of a transfer CreateTransfers took (no checks).
  static void ApplyTaken(v1::LedgerState& state, const v1::Transfer& taken);
  // Forgets transfer ids taken before `cutoff`, except open pending ones.
  static void ForgetBefore(v1::LedgerState& state, absl::Time cutoff);

  // posted credits - posted debits, and the same with pending included.
  static int64_t PostedBalance(const v1::LedgerAccount& account);
  static int64_t BalanceWithPending(const v1::LedgerAccount& account);

 private:
  struct Undo;
  v1::TransferResult Check(const v1::Transfer& transfer, absl::Time now,
                           v1::Transfer* resolved) const;

  v1::LedgerState& state_;
};

}  // namespace helpline::payments
