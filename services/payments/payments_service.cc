#include "services/payments/payments_service.h"

#include "absl/container/flat_hash_set.h"
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
      processor_(v1::SandboxProcessorService::NewStub(options_.processor_channel)) {}

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
    if (absl::Status written = parts_.front.Write(
            command, es::CommandOrigin::ByUser(LedgerId(options_.currency), command_id,
                                               caller.user_id));
        !written.ok()) {
      return written;
    }
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
    if (absl::Status written = parts_.front.Write(
            command, es::CommandOrigin::ByUser(LedgerId(options_.currency), command_id,
                                               caller.user_id));
        !written.ok()) {
      return written;
    }
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
    // Both kept up to date as events arrive: copies, no walk of the history.
    auto [accounts, recomputed] = parts_.read_model.AccountsAndRecomputed();
    bool replay = true;
    bool flags = true;
    int64_t sum = 0;
    for (const auto& [id, account] : accounts) {
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
      if ((account.flags() & v1::ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS) != 0 &&
          account.credits_pending() + account.credits_posted() > account.debits_posted()) {
        flags = false;
        problem(absl::StrCat(id, ": credits exceed debits"));
      }
      sum += Ledger::BalanceWithPending(account);
    }
    response->set_balances_match_replay(replay);
    response->set_flags_hold(flags);
    response->set_accounts_sum_to_zero(sum == 0);
    if (sum != 0) problem(absl::StrCat("accounts sum to ", sum));

    // The processor's journal against the ledger, a page at a time: every
    // operation that moved money there is in the ledger with its amount,
    // and the ledger has no other.
    bool matches = true;
    absl::flat_hash_set<std::string> seen;
    int64_t operations = 0;
    size_t in_both = 0;
    // The ledger records an operation only after the processor did it: what
    // it has before the journal is read must all be in the journal.
    const uint64_t ledger_mark = parts_.read_model.MovedAtProcessorMark();
    std::string page_token;
    // Entries that do not match yet: the read model may be between the
    // events of one answer (the intent closed, the posting not applied).
    std::vector<v1::JournalEntry> suspects;
    do {
      grpc::ClientContext call;
      call.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      v1::ListJournalRequest request;
      request.set_page_size(kJournalPageSize);
      request.set_page_token(page_token);
      v1::ListJournalResponse page;
      grpc::Status listed = processor_->ListJournal(&call, request, &page);
      if (!listed.ok()) {
        return absl::UnavailableError(absl::StrCat(
            "the payment processor's journal cannot be read now: ", listed.error_message()));
      }
      for (const v1::JournalEntry& entry : page.entries()) {
        ++operations;
        if (!entry.approved() || entry.kind() == v1::INTENT_KIND_AUTHORISE ||
            entry.kind() == v1::INTENT_KIND_VOID) {
          continue;
        }
        const std::string& key = entry.idempotency_key();
        seen.insert(key);
        PaymentsReadModel::LedgerSide in_ledger = parts_.read_model.MovedAtProcessor(key);
        // Done at the processor, its answer not recorded yet: no mismatch.
        if (!in_ledger.amount.has_value() && in_ledger.open) continue;
        if (in_ledger.amount == entry.amount().amount_minor()) {
          ++in_both;
        } else {
          suspects.push_back(entry);
        }
      }
      page_token = page.next_page_token();
    } while (!page_token.empty());
    if (!suspects.empty()) {
      // A transaction's events come together: once the read model has what
      // is in the topic now, an answer's outcome and posting are both in it.
      parts_.front.WaitUntilCurrent(absl::Now() + absl::Seconds(5)).IgnoreError();
      for (const v1::JournalEntry& entry : suspects) {
        PaymentsReadModel::LedgerSide in_ledger =
            parts_.read_model.MovedAtProcessor(entry.idempotency_key());
        if (in_ledger.amount.has_value()) ++in_both;
        if (in_ledger.amount == entry.amount().amount_minor() ||
            (!in_ledger.amount.has_value() && in_ledger.open)) {
          continue;
        }
        matches = false;
        problem(in_ledger.amount.has_value()
                    ? absl::StrCat(entry.idempotency_key(), ": the ledger has ", *in_ledger.amount,
                                   ", the processor ", entry.amount().amount_minor())
                    : absl::StrCat(entry.idempotency_key(), ": at the processor (",
                                   entry.amount().amount_minor(), ") but not in the ledger"));
      }
    }
    // Only when the ledger has more operations than the journal matched is
    // it walked for the ones the processor lacks.
    if (parts_.read_model.MovedAtProcessorCount() > in_both) {
      for (const std::string& key : parts_.read_model.MovedAtProcessorExcept(seen, ledger_mark)) {
        if (parts_.read_model.MovedAtProcessor(key).open) continue;
        matches = false;
        problem(absl::StrCat(key, ": in the ledger but the processor has nothing"));
      }
    }
    response->set_processor_matches_ledger(matches);
    response->set_processor_operations(operations);
    for (v1::MoneyAttention& entry : parts_.read_model.Attention()) {
      *response->add_attention() = std::move(entry);
    }
    *response->mutable_checked_at() = ToProtoTime(parts_.clock.Now());
    return absl::OkStatus();
  });
}

grpc::Status PaymentsService::RetryRefund(grpc::ServerContext* context,
                                          const v1::RetryRefundRequest* request,
                                          v1::RetryRefundResponse*) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (!caller.HasRole("admin")) return absl::PermissionDeniedError("admins only");
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    text::CheckText(request->session_id(), 1, 128, "session_id", validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    std::optional<v1::SessionMoney> money = parts_.read_model.SessionMoney(request->session_id());
    if (!money.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("session_id: payments knows no money of session ", request->session_id()));
    }
    v1::PaymentsCommand command;
    command.mutable_retry_refund()->set_session_id(request->session_id());
    return parts_.front.Write(
        command, es::CommandOrigin::ByUser(
                     LedgerId(options_.currency),
                     ids::CommandId(caller.user_id,
                                    absl::StrCat("retry-refund:", request->request_id())),
                     caller.user_id));
  });
}

}  // namespace helpline::payments
