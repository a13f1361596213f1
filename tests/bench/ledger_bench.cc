// helpline-ledger-bench (Google Benchmark): the ledger's rules in process,
// pure and batched as the processor batches them - single-phase transfers,
// and two-phase ones (pending then posted), between 10,000 accounts that
// must not go negative; items_per_second is transfers per second.
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "services/payments/domain/ledger.h"

namespace helpline::payments {
namespace {

constexpr int kAccounts = 10'000;
const absl::Time kNow = absl::FromUnixSeconds(1'798'761'600);

std::string AccountId(int i) { return absl::StrCat("expert:", i, ":payable"); }

// 10,000 funded accounts and the processor's cash account.
v1::LedgerState Funded() {
  v1::LedgerState state;
  Ledger ledger(state);
  ledger.OpenAccount("cash:psp", 0);
  std::vector<v1::Transfer> funding;
  for (int i = 0; i < kAccounts; ++i) {
    ledger.OpenAccount(AccountId(i), v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS);
    v1::Transfer transfer;
    transfer.set_transfer_id(absl::StrCat("fund-", i));
    transfer.set_debit_account_id("cash:psp");
    transfer.set_credit_account_id(AccountId(i));
    transfer.set_amount(1'000'000'000);
    funding.push_back(transfer);
  }
  std::vector<v1::Transfer> taken;
  ledger.CreateTransfers(funding, kNow, &taken);
  return state;
}

void BM_SinglePhase(benchmark::State& bench) {
  const int batch = static_cast<int>(bench.range(0));
  v1::LedgerState state = Funded();
  Ledger ledger(state);
  std::mt19937 random(1);
  int64_t next = 0;
  std::vector<v1::Transfer> transfers(batch);
  std::vector<v1::Transfer> taken;
  for (auto _ : bench) {
    bench.PauseTiming();
    for (v1::Transfer& transfer : transfers) {
      int from = static_cast<int>(random() % kAccounts);
      int to = (from + 1 + static_cast<int>(random() % (kAccounts - 1))) % kAccounts;
      transfer.set_transfer_id(absl::StrCat("t", next++));
      transfer.set_debit_account_id(AccountId(from));
      transfer.set_credit_account_id(AccountId(to));
      transfer.set_amount(1 + static_cast<int64_t>(random() % 1000));
    }
    taken.clear();
    bench.ResumeTiming();
    benchmark::DoNotOptimize(ledger.CreateTransfers(transfers, kNow, &taken));
  }
  bench.SetItemsProcessed(bench.iterations() * batch);
}
BENCHMARK(BM_SinglePhase)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_TwoPhase(benchmark::State& bench) {
  const int batch = static_cast<int>(bench.range(0));
  v1::LedgerState state = Funded();
  Ledger ledger(state);
  std::mt19937 random(2);
  int64_t next = 0;
  std::vector<v1::Transfer> pending(batch);
  std::vector<v1::Transfer> posts(batch);
  std::vector<v1::Transfer> taken;
  for (auto _ : bench) {
    bench.PauseTiming();
    for (int i = 0; i < batch; ++i) {
      int from = static_cast<int>(random() % kAccounts);
      int to = (from + 1) % kAccounts;
      std::string id = absl::StrCat("p", next++);
      pending[i].set_transfer_id(id);
      pending[i].set_debit_account_id(AccountId(from));
      pending[i].set_credit_account_id(AccountId(to));
      pending[i].set_amount(1000);
      pending[i].set_flags(v1::TRANSFER_FLAG_PENDING);
      posts[i].set_transfer_id(id + "-post");
      posts[i].set_pending_id(id);
      posts[i].set_amount(600);
      posts[i].set_flags(v1::TRANSFER_FLAG_POST_PENDING);
    }
    taken.clear();
    bench.ResumeTiming();
    ledger.CreateTransfers(pending, kNow, &taken);
    benchmark::DoNotOptimize(ledger.CreateTransfers(posts, kNow, &taken));
  }
  bench.SetItemsProcessed(bench.iterations() * batch * 2);
}
BENCHMARK(BM_TwoPhase)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace helpline::payments

BENCHMARK_MAIN();
