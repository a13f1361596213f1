#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/commands.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"

// Payments' sagas: other services' events into payments' commands (and
// payments' HoldFailed into sessions' CancelSession). Pure.
namespace helpline::payments {

struct CommissionOptions {
  // The deployment's currency: every command goes to its ledger.
  std::string currency = "EUR";
  int32_t default_bps = 2000;
  // By category id and by sponsor program id (a program's rate wins).
  absl::flat_hash_map<std::string, int32_t> category_bps;
  absl::flat_hash_map<std::string, int32_t> program_bps;
  // A refund after the expert was paid out: false, the expert owes what
  // their payable lacks (recovered from their next earnings); true, the
  // platform absorbs it.
  bool platform_absorbs_refund_shortfall = false;

  int32_t For(const std::string& category_id, const std::string& program_id) const;
};

// Reads overrides written "category:<id>=<bps>,program:<id>=<bps>" (empty:
// none) into `options`; INVALID_ARGUMENT saying what is wrong otherwise.
absl::Status ParseCommissionOverrides(absl::string_view text, CommissionOptions& options);

// MatchMade and BookingConfirmed hold; BookingCancelled voids, or takes the
// minimum charge when a person cancelled late.
std::vector<v1::PaymentsCommand> PaymentsFromMatching(const matching::v1::MatchingEvent& event,
                                                      const CommissionOptions& options);
// SessionEnded captures; no-show and cancel void; RefundRequested refunds.
std::vector<v1::PaymentsCommand> PaymentsFromSessions(const sessions::v1::SessionsEvent& event,
                                                      const CommissionOptions& options);
// Sponsor programs (their sponsor and free sessions per person).
std::vector<v1::PaymentsCommand> PaymentsFromCatalog(const catalog::v1::CatalogEvent& event,
                                                     const CommissionOptions& options);

}  // namespace helpline::payments
