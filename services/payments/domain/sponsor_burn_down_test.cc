#include "services/payments/domain/sponsor_burn_down.h"

#include "gtest/gtest.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {
namespace {

const absl::Time kDay0 = absl::FromUnixSeconds(1'780'000'000);

class SponsorBurnDownTest : public ::testing::Test {
 protected:
  v1::PaymentsEvent At(absl::Time at) {
    v1::PaymentsEvent event;
    *event.mutable_meta()->mutable_occurred_at() = ToProtoTime(at);
    return event;
  }
  void Program(const std::string& program, const std::string& sponsor) {
    v1::PaymentsEvent event = At(kDay0);
    event.mutable_sponsor_program_recorded()->set_program_id(program);
    event.mutable_sponsor_program_recorded()->set_sponsor_id(sponsor);
    burn_.Apply(event);
  }
  void Fund(const std::string& sponsor, int64_t amount) {
    v1::PaymentsEvent event = At(kDay0);
    event.mutable_sponsor_budget_funded()->set_sponsor_id(sponsor);
    v1::Transfer* transfer = event.mutable_sponsor_budget_funded()->add_transfers();
    transfer->set_debit_account_id("cash:psp");
    transfer->set_credit_account_id("sponsor:" + sponsor + ":budget");
    transfer->set_amount(amount);
    burn_.Apply(event);
  }
  void Hold(absl::Time at, const std::string& session, const std::string& program,
            const std::string& sponsor, int64_t max) {
    v1::PaymentsEvent event = At(at);
    v1::HoldPlaced& placed = *event.mutable_hold_placed();
    placed.set_session_id(session);
    placed.set_sponsor_id(sponsor);
    placed.mutable_max_amount()->set_currency_code("EUR");
    placed.mutable_max_amount()->set_amount_minor(max);
    placed.mutable_hold()->set_sponsor_program_id(program);
    burn_.Apply(event);
  }
  void Capture(absl::Time at, const std::string& session, int64_t amount) {
    v1::PaymentsEvent event = At(at);
    event.mutable_session_captured()->set_session_id(session);
    event.mutable_session_captured()->mutable_amount()->set_amount_minor(amount);
    burn_.Apply(event);
  }

  SponsorBurnDown burn_;
};

TEST_F(SponsorBurnDownTest, BudgetReservedSpentAndTheDayItRunsOut) {
  Program("program-a", "acme");
  Program("program-b", "acme");
  Fund("acme", 100'000);
  // Seven sessions of 1000 over the week, one open hold of 3000, one voided.
  for (int day = 0; day < 7; ++day) {
    const std::string session = "s" + std::to_string(day);
    Hold(kDay0 + absl::Hours(24 * day), session, day % 2 ? "program-b" : "program-a", "acme", 3000);
    Capture(kDay0 + absl::Hours(24 * day + 1), session, 1000);
  }
  Hold(kDay0 + absl::Hours(24 * 6 + 2), "open", "program-a", "acme", 3000);
  Hold(kDay0 + absl::Hours(24 * 6 + 3), "voided", "program-b", "acme", 3000);
  v1::PaymentsEvent voided = At(kDay0 + absl::Hours(24 * 6 + 4));
  voided.mutable_session_voided()->set_session_id("voided");
  burn_.Apply(voided);
  // A refund gives 1000 of program-b's back to the budget.
  v1::PaymentsEvent refunded = At(kDay0 + absl::Hours(24 * 6 + 5));
  refunded.mutable_session_refunded()->set_session_id("s1");
  refunded.mutable_session_refunded()->mutable_amount()->set_amount_minor(1000);
  burn_.Apply(refunded);

  const absl::Time now = kDay0 + absl::Hours(24 * 6 + 6);
  std::vector<SponsorProgramBurn> rows = burn_.Report(now);
  ASSERT_EQ(rows.size(), 2u);
  const SponsorProgramBurn& a = rows[0];
  const SponsorProgramBurn& b = rows[1];
  EXPECT_EQ(a.program_id, "program-a");
  EXPECT_EQ(a.sponsor_id, "acme");
  EXPECT_EQ(a.currency, "EUR");
  EXPECT_EQ(a.sessions_paid, 4);  // days 0, 2, 4, 6
  EXPECT_EQ(a.spent_minor, 4000);
  EXPECT_EQ(a.reserved_minor, 3000);
  EXPECT_EQ(b.sessions_paid, 3);
  EXPECT_EQ(b.spent_minor, 2000);  // 3000 captured, 1000 refunded
  EXPECT_EQ(b.reserved_minor, 0);
  // The sponsor's budget: 100000 - 6000 spent - 3000 reserved.
  EXPECT_EQ(a.budget_funded_minor, 100'000);
  EXPECT_EQ(a.budget_left_minor, 91'000);
  EXPECT_EQ(b.budget_left_minor, 91'000);
  // 6000 in the last 7 days: 857 a day (rounded down); 91000 lasts 106.17 days.
  EXPECT_EQ(a.pace_minor_per_day, 857);
  ASSERT_TRUE(a.runs_out_at.has_value());
  EXPECT_EQ(*a.runs_out_at, now + absl::Seconds(std::round(91'000.0 * 7 / 6000 * 86400)));
}

TEST_F(SponsorBurnDownTest, SpendingOlderThanAWeekDoesNotSetThePace) {
  Program("program-a", "acme");
  Fund("acme", 10'000);
  Hold(kDay0, "old", "program-a", "acme", 2000);
  Capture(kDay0 + absl::Minutes(30), "old", 2000);
  std::vector<SponsorProgramBurn> rows = burn_.Report(kDay0 + absl::Hours(24 * 8));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].spent_minor, 2000);
  EXPECT_EQ(rows[0].budget_left_minor, 8000);
  EXPECT_EQ(rows[0].pace_minor_per_day, 0);
  EXPECT_FALSE(rows[0].runs_out_at.has_value()) << "nothing spent this week: no date";
}

}  // namespace
}  // namespace helpline::payments
