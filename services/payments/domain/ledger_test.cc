#include "services/payments/domain/ledger.h"

#include <random>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "services/payments/domain/money.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

using v1::TransferResult;

const absl::Time kNow = absl::FromUnixSeconds(1'798'761'600);
constexpr uint32_t kNoNegative = v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS;

v1::Transfer Move(const std::string& id, const std::string& debit, const std::string& credit,
                  int64_t amount, uint32_t flags = 0) {
  v1::Transfer transfer;
  transfer.set_transfer_id(id);
  transfer.set_debit_account_id(debit);
  transfer.set_credit_account_id(credit);
  transfer.set_amount(amount);
  transfer.set_flags(flags);
  return transfer;
}

v1::Transfer Post(const std::string& id, const std::string& pending_id, int64_t amount = 0) {
  v1::Transfer transfer;
  transfer.set_transfer_id(id);
  transfer.set_pending_id(pending_id);
  transfer.set_amount(amount);
  transfer.set_flags(v1::TRANSFER_FLAG_POST_PENDING);
  return transfer;
}

v1::Transfer Void(const std::string& id, const std::string& pending_id) {
  v1::Transfer transfer = Post(id, pending_id);
  transfer.set_flags(v1::TRANSFER_FLAG_VOID_PENDING);
  return transfer;
}

class LedgerTest : public ::testing::Test {
 protected:
  LedgerTest() : ledger_(state_) {
    ledger_.OpenAccount("cash:psp", 0);
    ledger_.OpenAccount("expert:ben:payable", kNoNegative);
    ledger_.OpenAccount("platform:commission", kNoNegative);
    ledger_.OpenAccount("sponsor:acme:budget", kNoNegative);
  }

  std::vector<TransferResult> Take(const std::vector<v1::Transfer>& transfers,
                                   absl::Time at = kNow) {
    std::vector<v1::Transfer> taken;
    std::vector<TransferResult> results = ledger_.CreateTransfers(transfers, at, &taken);
    // Replaying what was taken on a copy of the state before gives the same state.
    for (const v1::Transfer& transfer : taken) Ledger::ApplyTaken(replayed_, transfer);
    return results;
  }

  const v1::LedgerAccount& Account(const std::string& id) { return state_.accounts().at(id); }

  int64_t Sum() {
    int64_t sum = 0;
    for (const auto& [id, account] : state_.accounts()) sum += Ledger::BalanceWithPending(account);
    return sum;
  }

  void SetUp() override { replayed_ = state_; }

  v1::LedgerState state_;
  v1::LedgerState replayed_;
  Ledger ledger_;
};

TEST_F(LedgerTest, ASinglePhaseTransferMovesPostedMoneyAndEveryAccountSumsToZero) {
  EXPECT_EQ(Take({Move("t1", "cash:psp", "sponsor:acme:budget", 10'000)}),
            std::vector<TransferResult>{v1::TRANSFER_RESULT_OK});
  EXPECT_EQ(Account("sponsor:acme:budget").credits_posted(), 10'000);
  EXPECT_EQ(Ledger::PostedBalance(Account("cash:psp")), -10'000);
  EXPECT_EQ(Sum(), 0);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(state_, replayed_));
}

TEST_F(LedgerTest, ABudgetIsNeverOverdrawnAndPendingReservesCount) {
  Take({Move("fund", "cash:psp", "sponsor:acme:budget", 5'000)});
  // 50 sponsored holds of 300 against a budget of 5,000: 16 fit.
  int held = 0;
  for (int i = 0; i < 50; ++i) {
    auto result = Take({Move("hold-" + std::to_string(i), "sponsor:acme:budget",
                             "expert:ben:payable", 300, v1::TRANSFER_FLAG_PENDING)});
    if (result[0] == v1::TRANSFER_RESULT_OK) {
      ++held;
    } else {
      EXPECT_EQ(result[0], v1::TRANSFER_RESULT_EXCEEDS_CREDITS);
    }
  }
  EXPECT_EQ(held, 16);
  const v1::LedgerAccount& budget = Account("sponsor:acme:budget");
  EXPECT_GE(Ledger::BalanceWithPending(budget), 0);
  EXPECT_EQ(budget.debits_pending(), 16 * 300);
  EXPECT_EQ(Sum(), 0);
}

TEST_F(LedgerTest, APartialPostMovesPartAndReleasesTheRest) {
  Take({Move("fund", "cash:psp", "sponsor:acme:budget", 1'000)});
  ASSERT_EQ(Take({Move("hold", "sponsor:acme:budget", "expert:ben:payable", 900,
                       v1::TRANSFER_FLAG_PENDING)})[0],
            v1::TRANSFER_RESULT_OK);
  EXPECT_EQ(Take({Post("post", "hold", 950)})[0], v1::TRANSFER_RESULT_EXCEEDS_PENDING_AMOUNT);
  ASSERT_EQ(Take({Post("post", "hold", 600)})[0], v1::TRANSFER_RESULT_OK);
  const v1::LedgerAccount& budget = Account("sponsor:acme:budget");
  EXPECT_EQ(budget.debits_pending(), 0) << "the rest is released";
  EXPECT_EQ(budget.debits_posted(), 600);
  EXPECT_EQ(Account("expert:ben:payable").credits_posted(), 600);
  EXPECT_EQ(Take({Post("post-2", "hold")})[0], v1::TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED);
  EXPECT_EQ(Take({Void("void", "hold")})[0], v1::TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_POSTED);
  EXPECT_EQ(Take({Post("post-3", "nothing")})[0],
            v1::TRANSFER_RESULT_PENDING_TRANSFER_NOT_FOUND);
  EXPECT_EQ(Sum(), 0);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(state_, replayed_));
}

TEST_F(LedgerTest, AVoidReleasesEverythingAndATimeoutVoidsByItself) {
  Take({Move("fund", "cash:psp", "sponsor:acme:budget", 1'000)});
  v1::Transfer hold = Move("hold", "sponsor:acme:budget", "expert:ben:payable", 700,
                           v1::TRANSFER_FLAG_PENDING);
  *hold.mutable_timeout() = ToProtoDuration(absl::Minutes(10));
  ASSERT_EQ(Take({hold})[0], v1::TRANSFER_RESULT_OK);
  EXPECT_EQ(ledger_.NextTimeout(), kNow + absl::Minutes(10));
  EXPECT_TRUE(ledger_.Expired(kNow + absl::Minutes(9)).empty());
  std::vector<std::string> expired = ledger_.Expired(kNow + absl::Minutes(10));
  ASSERT_EQ(expired, std::vector<std::string>{"hold"});
  EXPECT_EQ(Take({Post("late-post", "hold")}, kNow + absl::Minutes(11))[0],
            v1::TRANSFER_RESULT_PENDING_TRANSFER_EXPIRED);
  ASSERT_EQ(Take({Void(TimeoutTransferId("hold"), "hold")}, kNow + absl::Minutes(11))[0],
            v1::TRANSFER_RESULT_OK);
  EXPECT_EQ(state_.taken().at("hold").outcome(), v1::PENDING_OUTCOME_EXPIRED);
  EXPECT_EQ(Account("sponsor:acme:budget").debits_pending(), 0);
  EXPECT_FALSE(ledger_.NextTimeout().has_value());

  ASSERT_EQ(Take({Move("hold-2", "sponsor:acme:budget", "expert:ben:payable", 500,
                       v1::TRANSFER_FLAG_PENDING)})[0],
            v1::TRANSFER_RESULT_OK);
  ASSERT_EQ(Take({Void("void-2", "hold-2")})[0], v1::TRANSFER_RESULT_OK);
  EXPECT_EQ(Account("expert:ben:payable").credits_pending(), 0);
  EXPECT_EQ(Take({Post("post-2", "hold-2")})[0], v1::TRANSFER_RESULT_PENDING_TRANSFER_ALREADY_VOIDED);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(state_, replayed_));
}

TEST_F(LedgerTest, LinkedTransfersSucceedOrFailTogether) {
  Take({Move("fund", "cash:psp", "sponsor:acme:budget", 1'000)});
  // The expert's share fits, the fee would overdraw: neither happens.
  std::vector<TransferResult> results =
      Take({Move("share", "sponsor:acme:budget", "expert:ben:payable", 800,
                 v1::TRANSFER_FLAG_PENDING | v1::TRANSFER_FLAG_LINKED),
            Move("fee", "sponsor:acme:budget", "platform:commission", 300,
                 v1::TRANSFER_FLAG_PENDING),
            Move("other", "cash:psp", "sponsor:acme:budget", 1)});
  EXPECT_EQ(results, (std::vector<TransferResult>{v1::TRANSFER_RESULT_LINKED_EVENT_FAILED,
                                                  v1::TRANSFER_RESULT_EXCEEDS_CREDITS,
                                                  v1::TRANSFER_RESULT_OK}))
      << "a failed chain does not stop the next transfer";
  EXPECT_EQ(Account("expert:ben:payable").credits_pending(), 0) << "the first link was undone";
  EXPECT_FALSE(state_.taken().contains("share"));
  results = Take({Move("share", "sponsor:acme:budget", "expert:ben:payable", 800,
                       v1::TRANSFER_FLAG_PENDING | v1::TRANSFER_FLAG_LINKED),
                  Move("fee", "sponsor:acme:budget", "platform:commission", 200,
                       v1::TRANSFER_FLAG_PENDING)});
  EXPECT_EQ(results, (std::vector<TransferResult>{v1::TRANSFER_RESULT_OK, v1::TRANSFER_RESULT_OK}));
  EXPECT_EQ(Take({Move("open", "cash:psp", "sponsor:acme:budget", 1, v1::TRANSFER_FLAG_LINKED)})[0],
            v1::TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN);
  EXPECT_EQ(Sum(), 0);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(state_, replayed_));
}

TEST_F(LedgerTest, ARetryIsTheSameTransferAndAReusedIdIsRefused) {
  v1::Transfer fund = Move("fund", "cash:psp", "sponsor:acme:budget", 1'000);
  ASSERT_EQ(Take({fund})[0], v1::TRANSFER_RESULT_OK);
  EXPECT_EQ(Take({fund}, kNow + absl::Hours(1))[0], v1::TRANSFER_RESULT_EXISTS);
  EXPECT_EQ(Account("sponsor:acme:budget").credits_posted(), 1'000) << "once";
  fund.set_amount(2'000);
  EXPECT_EQ(Take({fund})[0], v1::TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_FIELDS);
  // After the dedupe window the id is forgotten.
  Ledger::ForgetBefore(state_, kNow + absl::Hours(24 * 7));
  EXPECT_FALSE(state_.taken().contains("fund"));
}

TEST_F(LedgerTest, BadTransfersSayWhy) {
  EXPECT_EQ(Take({Move("", "cash:psp", "platform:commission", 1)})[0],
            v1::TRANSFER_RESULT_ID_MUST_NOT_BE_EMPTY);
  EXPECT_EQ(Take({Move("a", "cash:psp", "cash:psp", 1)})[0],
            v1::TRANSFER_RESULT_ACCOUNTS_MUST_BE_DIFFERENT);
  EXPECT_EQ(Take({Move("b", "nobody", "cash:psp", 1)})[0],
            v1::TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND);
  EXPECT_EQ(Take({Move("c", "cash:psp", "nobody", 1)})[0],
            v1::TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND);
  EXPECT_EQ(Take({Move("d", "cash:psp", "platform:commission", 0)})[0],
            v1::TRANSFER_RESULT_AMOUNT_MUST_BE_POSITIVE);
  EXPECT_EQ(Take({Move("e", "cash:psp", "platform:commission", 1,
                       v1::TRANSFER_FLAG_PENDING | v1::TRANSFER_FLAG_VOID_PENDING)})[0],
            v1::TRANSFER_RESULT_FLAGS_ARE_MUTUALLY_EXCLUSIVE);
  EXPECT_EQ(Take({Move("f", "platform:commission", "cash:psp", 1)})[0],
            v1::TRANSFER_RESULT_EXCEEDS_CREDITS);
  EXPECT_EQ(Take({Move("g", "cash:psp", "platform:commission", INT64_MAX),
                  Move("h", "cash:psp", "platform:commission", 1)})[1],
            v1::TRANSFER_RESULT_OVERFLOW);
  EXPECT_EQ(Sum(), 0);
}

TEST(Money, ShareAndFeeAlwaysSumToTheAmount) {
  std::mt19937_64 random(42);
  for (int i = 0; i < 200'000; ++i) {
    int64_t amount = static_cast<int64_t>(random() % 10'000'000'000ULL);
    if (i % 7 == 0) amount = static_cast<int64_t>(random() % 1000);
    if (i == 1) amount = INT64_MAX;
    int32_t bps = static_cast<int32_t>(random() % 10'001);
    Split split = SplitAmount(amount, bps);
    ASSERT_EQ(split.fee + split.expert_share, amount) << amount << " at " << bps;
    ASSERT_GE(split.fee, 0);
    ASSERT_GE(split.expert_share, 0);
    // The fee is the exact value rounded half up.
    __int128 exact_times_10000 = static_cast<__int128>(amount) * bps;
    ASSERT_LE(static_cast<__int128>(split.fee) * 10000 - exact_times_10000, 5000);
    ASSERT_GT(static_cast<__int128>(split.fee) * 10000 - exact_times_10000, -5000);
  }
  EXPECT_EQ(SplitAmount(1800, 2000).fee, 360);
  EXPECT_EQ(SplitAmount(1, 5000).fee, 1) << "half rounds up";
  EXPECT_EQ(SplitAmount(1, 4999).fee, 0);
  EXPECT_EQ(SplitAmount(12345, 0).fee, 0);
  EXPECT_EQ(SplitAmount(12345, 10000).expert_share, 0);
}

}  // namespace
}  // namespace helpline::payments
