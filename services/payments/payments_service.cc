#include "services/payments/payments_service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "services/payments/domain/ledger.h"
#include "services/payments/domain/payments_domain.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/paging.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/core/text_checks.h"
#include "services/runtime/eventsourcing/front.h"

namespace helpline::payments {

PaymentsService::PaymentsService(PaymentsOptions options, PaymentsParts parts)
    : options_(std::move(options)),
      parts_(parts),
      processor_(v1::SandboxProcessorService::NewStub(
          grpc::CreateChannel(options_.processor_target, grpc::InsecureChannelCredentials()))) {}

absl::Status PaymentsService::Write(v1::PaymentsCommand& command, const std::string& command_id,
                                    const auth::Principal& caller) {
  return es::ExecuteCommand(parts_.commands, parts_.events, command,
                            es::CommandOrigin{LedgerId(options_.currency), command_id,
                                              caller.user_id, "", 0},
                            options_.command_timeout)
      .status();
}

grpc::Status PaymentsService::FundSponsorBudget(grpc::ServerContext* context,
                                                const v1::FundSponsorBudgetRequest* request,
                                                v1::FundSponsorBudgetResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (!caller.HasRole("sponsor")) {
      return absl::PermissionDeniedError("only sponsors fund a budget");
    }
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    validator.Check(request->amount().currency_code() == options_.currency,
                    "amount.currency_code", absl::StrCat("must be ", options_.currency));
    validator.Check(request->amount().amount_minor() > 0, "amount.amount_minor",
                    "must be positive");
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    const std::string command_id =
        ids::CommandId(caller.user_id, absl::StrCat("fund:", request->request_id()));
    const std::string funding_id = ids::DerivedCommandId(command_id, "funding");
    v1::PaymentsCommand command;
    v1::FundSponsorBudget& fund = *command.mutable_fund_sponsor_budget();
    fund.set_funding_id(funding_id);
    fund.set_sponsor_id(caller.user_id);
    *fund.mutable_amount() = request->amount();
    if (absl::Status written = Write(command, command_id, caller); !written.ok()) return written;
    response->set_funding_id(funding_id);
    return absl::OkStatus();
  });
}

grpc::Status PaymentsService::GetBalance(grpc::ServerContext* context,
                                         const v1::GetBalanceRequest*,
                                         v1::GetBalanceResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    *response = parts_.read_model.BalanceOf(caller.user_id, parts_.clock.Now());
    return absl::OkStatus();
  });
}

grpc::Status PaymentsService::ListTransfers(grpc::ServerContext* context,
                                            const v1::ListTransfersRequest* request,
                                            v1::ListTransfersResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    return paging::ListPage(
        request->page_size(), request->page_token(),
        [&](const std::optional<paging::TimeKey>& after, size_t limit) {
          return parts_.read_model.TransfersOf(caller.user_id, after, limit);
        },
        [](const v1::Transfer& transfer) {
          return paging::TimeKey{FromProtoTime(transfer.timestamp()), transfer.transfer_id()};
        },
        [&](v1::Transfer&& transfer) { *response->add_transfers() = std::move(transfer); },
        response->mutable_next_page_token());
  });
}

grpc::Status PaymentsService::RequestPayout(grpc::ServerContext* context,
                                            const v1::RequestPayoutRequest* request,
                                            v1::RequestPayoutResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (!caller.HasRole("expert")) return absl::PermissionDeniedError("only experts are paid out");
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    const std::string command_id =
        ids::CommandId(caller.user_id, absl::StrCat("payout:", request->request_id()));
    const std::string payout_id = ids::DerivedCommandId(command_id, "payout");
    v1::PaymentsCommand command;
    v1::RequestPayout& payout = *command.mutable_request_payout();
    payout.set_payout_id(payout_id);
    payout.set_expert_id(caller.user_id);
    payout.set_minimum_minor(options_.payout_minimum_minor);
    *payout.mutable_refund_window() = ToProtoDuration(options_.refund_window);
    if (absl::Status written = Write(command, command_id, caller); !written.ok()) return written;
    response->set_payout_id(payout_id);
    if (std::optional<v1::PayoutStarted> started = parts_.read_model.OpenPayout(payout_id)) {
      *response->mutable_amount() = started->amount();
    }
    return absl::OkStatus();
  });
}

grpc::Status PaymentsService::Reconcile(grpc::ServerContext* context, const v1::ReconcileRequest*,
                                        v1::ReconcileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (!caller.HasRole("admin")) return absl::PermissionDeniedError("admins only");
    auto problem = [&](std::string text) { response->add_problems(std::move(text)); };
    v1::PaymentsState state = parts_.read_model.State();
    auto recomputed = parts_.read_model.Recomputed();
    bool replay = true;
    bool flags = true;
    int64_t sum = 0;
    for (const auto& [id, account] : state.ledger().accounts()) {
      const v1::LedgerAccount& again = recomputed[id];
      if (again.debits_posted() != account.debits_posted() ||
          again.credits_posted() != account.credits_posted() ||
          again.debits_pending() != account.debits_pending() ||
          again.credits_pending() != account.credits_pending()) {
        replay = false;
        problem(absl::StrCat(id, ": balances differ from its transfers"));
      }
      if ((account.flags() & v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS) != 0 &&
          account.debits_pending() + account.debits_posted() > account.credits_posted()) {
        flags = false;
        problem(absl::StrCat(id, ": debits exceed credits"));
      }
      sum += Ledger::BalanceWithPending(account);
    }
    response->set_balances_match_replay(replay);
    response->set_flags_hold(flags);
    response->set_accounts_sum_to_zero(sum == 0);
    if (sum != 0) problem(absl::StrCat("accounts sum to ", sum));

    // The processor's journal against the ledger: every operation that
    // moved money.
    grpc::ClientContext call;
    call.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListJournalResponse journal;
    grpc::Status listed = processor_->ListJournal(&call, v1::ListJournalRequest(), &journal);
    if (!listed.ok()) {
      return absl::UnavailableError("the payment processor's journal cannot be read now");
    }
    absl::flat_hash_map<std::string, int64_t> at_processor;  // intent id -> amount
    for (const v1::JournalEntry& entry : journal.entries()) {
      if (entry.approved() && entry.kind() != v1::INTENT_KIND_AUTHORISE &&
          entry.kind() != v1::INTENT_KIND_VOID) {
        at_processor[entry.idempotency_key()] = entry.amount().amount_minor();
      }
    }
    absl::flat_hash_map<std::string, int64_t> in_ledger = parts_.read_model.MovedAtProcessor();
    bool matches = true;
    for (const auto& [key, amount] : in_ledger) {
      auto found = at_processor.find(key);
      // An intent not executed yet is no mismatch.
      bool open = state.open_intents().contains(key);
      if (found == at_processor.end() ? !open : found->second != amount) {
        matches = false;
        problem(absl::StrCat(key, ": the ledger has ", amount, ", the processor ",
                             found == at_processor.end() ? std::string("nothing")
                                                         : absl::StrCat(found->second)));
      }
    }
    for (const auto& [key, amount] : at_processor) {
      if (!in_ledger.contains(key)) {
        matches = false;
        problem(absl::StrCat(key, ": at the processor but not in the ledger"));
      }
    }
    response->set_processor_matches_ledger(matches);
    *response->mutable_checked_at() = ToProtoTime(parts_.clock.Now());
    return absl::OkStatus();
  });
}

}  // namespace helpline::payments
