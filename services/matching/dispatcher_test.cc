#include "services/matching/dispatcher.h"

#include <string>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/matching_test_log.h"
#include "services/matching/domain/matching_test_world.h"
#include "services/matching/fake_presence.h"
#include "services/runtime/eventsourcing/testing/domain_test_log.h"
#include "services/runtime/server/testing/registry_values.h"

// The dispatcher with its edges faked: presence in memory, and commands
// decided at once by matching's own domain, feeding the read model.
namespace helpline::matching {
namespace {

using testing::FakePresence;
using testing::MatchingTestLog;
using testing::Open;
using testing::PerMinute;
using testing::World;

const std::string kAnna = "expert-anna";
const std::string kPerson = "person-1";

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() : log_(&world_.model), writer_(log_), clock_(log_.now) {
    presence_.now = log_.now;
    world_.Expert(kAnna, "bike-repair", PerMinute(150));
    EXPECT_TRUE(presence_.Heartbeat(kAnna, v1::PRESENCE_STATUS_AVAILABLE, log_.now).ok());
  }

  // A help request of `person` for bike repair, waiting.
  void Ask(const std::string& request_id, const std::string& person = kPerson) {
    ASSERT_TRUE(log_.Send(HelpRequestAggregate(request_id), Open("bike-repair", person), person).ok());
  }
  v1::HelpRequestStatus StatusOf(const std::string& request_id) {
    std::optional<v1::HelpRequest> request = world_.model.Request(request_id);
    return request ? request->status() : v1::HELP_REQUEST_STATUS_UNSPECIFIED;
  }

  double Waiting() {
    return server::testing::ValueOf(registry_, "helpline_matching_waiting_requests").value_or(-1);
  }
  // Offers observed, and their waits' sum in seconds.
  std::pair<uint64_t, double> OfferWaits() {
    auto waits = server::testing::FindSeries(registry_, "helpline_matching_offer_wait_seconds");
    if (!waits) return {0, -1};
    return {waits->second.histogram.sample_count, waits->second.histogram.sample_sum};
  }

  World world_;
  MatchingTestLog log_;
  es::testing::DomainWriter<MatchingDomain> writer_;
  FakePresence presence_;
  FakeClock clock_;
  prometheus::Registry registry_;
  MatchingMetrics metrics_{registry_, /*clock_rate=*/1};
  Dispatcher dispatcher_{DispatcherOptions{}, world_.model, presence_, writer_, clock_, &metrics_};
};

TEST_F(DispatcherTest, OffersAWaitingRequestToAFreeExpertOnceAndReservesThem) {
  Ask("req-1");
  EXPECT_EQ(dispatcher_.RunOnce(), 1);
  ASSERT_EQ(writer_.sent.size(), 1u);
  const v1::OfferToExpert& offer = writer_.sent[0].offer_to_expert();
  EXPECT_EQ(offer.expert_id(), kAnna);
  EXPECT_EQ(presence_.ReservedFor(kAnna), offer.offer_id()) << "reserved for this offer";
  EXPECT_EQ(StatusOf("req-1"), v1::HELP_REQUEST_STATUS_OFFERED);
  EXPECT_EQ(dispatcher_.RunOnce(), 0) << "an offered request is not offered again";
  EXPECT_EQ(writer_.sent.size(), 1u);
}

TEST_F(DispatcherTest, AnExpertHoldingAnotherOfferIsNotOfferedASecondRequest) {
  Ask("req-1");
  Ask("req-2", "person-2");
  EXPECT_EQ(dispatcher_.RunOnce(), 1);
  ASSERT_EQ(writer_.sent.size(), 1u);
  EXPECT_EQ(StatusOf("req-1"), v1::HELP_REQUEST_STATUS_OFFERED) << "oldest first";
  EXPECT_EQ(StatusOf("req-2"), v1::HELP_REQUEST_STATUS_WAITING);
}

TEST_F(DispatcherTest, WithPresenceDownNothingIsOfferedUntilItIsBack) {
  Ask("req-1");
  presence_.down = true;
  EXPECT_EQ(dispatcher_.RunOnce(), 0);
  EXPECT_TRUE(writer_.sent.empty()) << "no offer without a reservation";
  presence_.down = false;
  EXPECT_EQ(dispatcher_.RunOnce(), 1);
  EXPECT_EQ(StatusOf("req-1"), v1::HELP_REQUEST_STATUS_OFFERED);
}

TEST_F(DispatcherTest, AnOfferTheRequestRefusesGivesTheExpertBack) {
  Ask("req-1");
  writer_.FailWith(absl::FailedPreconditionError("the request no longer waits"));
  EXPECT_EQ(dispatcher_.RunOnce(), 0);
  EXPECT_EQ(presence_.ReservedFor(kAnna), "") << "the reservation was released";
  writer_.FailWith(absl::OkStatus());
  EXPECT_EQ(dispatcher_.RunOnce(), 1) << "the expert is offered the request again";
}

// The metric the help-now objective is measured with: a request kept in
// line because nobody was free is not kept waiting by us.
TEST_F(DispatcherTest, TheLineAndTheWaitForAnOfferCountOnlyTheTimeSomeoneWasFree) {
  Ask("req-1", "p1");
  Ask("req-2", "p2");
  EXPECT_EQ(dispatcher_.RunOnce(), 1);
  EXPECT_EQ(Waiting(), 1) << "req-2 is in line";
  EXPECT_EQ(OfferWaits(), (std::pair<uint64_t, double>{1, 0}));

  // Nobody free for req-2 for ten minutes; then Ben comes online and req-2
  // is offered three seconds after the last look that found nobody.
  for (int minute = 0; minute < 10; ++minute) {
    clock_.Advance(absl::Minutes(1));
    EXPECT_EQ(dispatcher_.RunOnce(), 0);
  }
  clock_.Advance(absl::Seconds(3));
  world_.Expert("expert-ben", "bike-repair", PerMinute(150));
  ASSERT_TRUE(presence_.Heartbeat("expert-ben", v1::PRESENCE_STATUS_AVAILABLE, log_.now).ok());
  EXPECT_EQ(dispatcher_.RunOnce(), 1);
  EXPECT_EQ(Waiting(), 0);
  EXPECT_EQ(OfferWaits(), (std::pair<uint64_t, double>{2, 3}));
}

TEST_F(DispatcherTest, ANewRequestWaitsSinceItWasAsked) {
  Ask("req-1");
  clock_.Advance(absl::Seconds(4));  // the request reached the dispatcher late
  EXPECT_EQ(dispatcher_.RunOnce(), 1);
  EXPECT_EQ(OfferWaits(), (std::pair<uint64_t, double>{1, 4}));
}

TEST_F(DispatcherTest, ARequestWhoseOfferCouldNotBeWrittenKeepsWaitingInRealSeconds) {
  MatchingMetrics metrics(registry_, /*clock_rate=*/60);
  Dispatcher dispatcher({.clock_rate = 60}, world_.model, presence_, writer_, clock_, &metrics);
  Ask("req-1");
  writer_.FailWith(absl::UnavailableError("matching's processor is not answering"));
  EXPECT_EQ(dispatcher.RunOnce(), 0);
  clock_.Advance(absl::Minutes(2));  // two seconds of real time at 60 times
  writer_.FailWith(absl::OkStatus());
  EXPECT_EQ(dispatcher.RunOnce(), 1);
  EXPECT_EQ(OfferWaits(), (std::pair<uint64_t, double>{1, 2}));
}

}  // namespace
}  // namespace helpline::matching
