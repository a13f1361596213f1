// PresenceStore against the test run's real Redis.
#include "services/matching/presence.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_stack.h"

namespace helpline::matching {
namespace {

using ::helpline::testing::TestRedis;
using ::helpline::testing::UniqueName;

class PresenceRedisTest : public ::testing::Test {
 protected:
  PresenceRedisTest()
      : redis_(TestRedis(), 2), presence_(redis_, UniqueName("presence") + ":", absl::Seconds(30)) {}
  redis::ClientPool redis_;
  PresenceStore presence_;
  absl::Time now_ = absl::FromUnixSeconds(1'790'000'000);
};

TEST_F(PresenceRedisTest, OnlyChangesCountAndTheyAreOrdered) {
  auto first = presence_.Heartbeat("ben", v1::PRESENCE_STATUS_AVAILABLE, now_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(*first, 0);
  auto same = presence_.Heartbeat("ben", v1::PRESENCE_STATUS_AVAILABLE, now_ + absl::Seconds(10));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, 0) << "the same status again is no change";
  auto busy = presence_.Heartbeat("ben", v1::PRESENCE_STATUS_BUSY, now_ + absl::Seconds(20));
  ASSERT_TRUE(busy.ok());
  EXPECT_GT(*busy, *first);
  EXPECT_EQ(*presence_.Status("ben"), v1::PRESENCE_STATUS_BUSY);
  EXPECT_EQ(*presence_.Status("nobody"), v1::PRESENCE_STATUS_OFFLINE);
}

TEST_F(PresenceRedisTest, ASweepTakesOnlyExpiredExperts) {
  // Real time here: the key's TTL is Redis's.
  PresenceStore quick(redis_, UniqueName("presence") + ":", absl::Milliseconds(300));
  absl::Time start = absl::Now();
  ASSERT_TRUE(quick.Heartbeat("gone", v1::PRESENCE_STATUS_AVAILABLE, start).ok());
  ASSERT_TRUE(quick.Heartbeat("stays", v1::PRESENCE_STATUS_AVAILABLE, start).ok());
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_TRUE(quick.Heartbeat("stays", v1::PRESENCE_STATUS_AVAILABLE, absl::Now()).ok());
  auto gone = quick.Sweep(absl::Now(), 100);
  ASSERT_TRUE(gone.ok()) << gone.status();
  ASSERT_EQ(gone->size(), 1u);
  EXPECT_EQ((*gone)[0].expert_id, "gone");
  EXPECT_GT((*gone)[0].sequence, 0);
  EXPECT_TRUE(quick.Sweep(absl::Now(), 100)->empty()) << "taken once";

  // A heartbeat after expiry is a change again (back online).
  auto back = quick.Heartbeat("gone", v1::PRESENCE_STATUS_AVAILABLE, absl::Now());
  ASSERT_TRUE(back.ok());
  EXPECT_GT(*back, (*gone)[0].sequence);
}

TEST_F(PresenceRedisTest, ConcurrentSweepersTakeEachExpertOnce) {
  PresenceStore quick(redis_, UniqueName("presence") + ":", absl::Milliseconds(100));
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(quick.Heartbeat(absl::StrCat("e", i), v1::PRESENCE_STATUS_AVAILABLE, absl::Now()).ok());
  }
  absl::SleepFor(absl::Milliseconds(250));
  std::atomic<int> taken{0};
  std::vector<std::thread> sweepers;
  for (int t = 0; t < 4; ++t) {
    sweepers.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        auto gone = quick.Sweep(absl::Now(), 17);
        if (gone.ok()) taken += static_cast<int>(gone->size());
      }
    });
  }
  for (std::thread& sweeper : sweepers) sweeper.join();
  EXPECT_EQ(taken.load(), 200);
}

TEST_F(PresenceRedisTest, ConcurrentDispatchersReserveAnExpertForOneOfferOnly) {
  ASSERT_TRUE(presence_.Heartbeat("ann", v1::PRESENCE_STATUS_AVAILABLE, absl::Now()).ok());
  std::atomic<int> won{0};
  std::string winner;
  absl::Mutex mutex;
  std::vector<std::thread> dispatchers;
  for (int t = 0; t < 8; ++t) {
    dispatchers.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        std::string offer = absl::StrCat("offer-", t, "-", round);
        absl::StatusOr<bool> reserved = presence_.Reserve("ann", offer, absl::Seconds(30));
        ASSERT_TRUE(reserved.ok()) << reserved.status();
        if (*reserved) {
          ++won;
          absl::MutexLock lock(&mutex);
          winner = offer;
        }
      }
    });
  }
  for (std::thread& dispatcher : dispatchers) dispatcher.join();
  EXPECT_EQ(won.load(), 1) << "80 attempts, one reservation";

  // Only the winner's offer releases it; then the expert can be reserved again.
  ASSERT_TRUE(presence_.Release("ann", "someone-else").ok());
  EXPECT_FALSE(*presence_.Reserve("ann", "next", absl::Seconds(30)));
  ASSERT_TRUE(presence_.Release("ann", winner).ok());
  EXPECT_TRUE(*presence_.Reserve("ann", "next", absl::Seconds(30)));

  // Busy, away or offline experts are not reserved.
  ASSERT_TRUE(presence_.Heartbeat("bea", v1::PRESENCE_STATUS_BUSY, absl::Now()).ok());
  EXPECT_FALSE(*presence_.Reserve("bea", "o", absl::Seconds(30)));
  EXPECT_FALSE(*presence_.Reserve("nobody", "o", absl::Seconds(30)));
}

TEST_F(PresenceRedisTest, AReservationEndsWithItsWindowAndAMatchKeepsIt) {
  ASSERT_TRUE(presence_.Heartbeat("cid", v1::PRESENCE_STATUS_AVAILABLE, absl::Now()).ok());
  ASSERT_TRUE(*presence_.Reserve("cid", "short", absl::Milliseconds(200)));
  ASSERT_TRUE(presence_.Keep("cid", "short", absl::Seconds(30)).ok());
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_FALSE(*presence_.Reserve("cid", "other", absl::Seconds(1))) << "kept for the match";
  ASSERT_TRUE(presence_.Heartbeat("dee", v1::PRESENCE_STATUS_AVAILABLE, absl::Now()).ok());
  ASSERT_TRUE(*presence_.Reserve("dee", "short", absl::Milliseconds(200)));
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_TRUE(*presence_.Reserve("dee", "other", absl::Seconds(1))) << "the window ended";
}

TEST(PresenceRedisDown, HeartbeatsFailClearlyAndRecoverWhenRedisReturns) {
  ::helpline::testing::RedisServerProcess server(::helpline::testing::PickFreePort());
  ASSERT_TRUE(server.Start());
  redis::ClientOptions options;
  options.port = server.port();
  redis::ClientPool client(options, 1);
  PresenceStore presence(client, "down:", absl::Seconds(30));
  absl::StatusOr<int64_t> first =
      presence.Heartbeat("ben", v1::PRESENCE_STATUS_AVAILABLE, absl::Now());
  ASSERT_TRUE(first.ok());
  server.Kill();
  absl::StatusOr<int64_t> during = presence.Heartbeat("ben", v1::PRESENCE_STATUS_BUSY, absl::Now());
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server.Start());
  // Presence is soft state: the restarted Redis is empty, and the next
  // heartbeat is a change (back online), ordered after every earlier one.
  absl::StatusOr<int64_t> after = presence.Heartbeat("ben", v1::PRESENCE_STATUS_BUSY, absl::Now());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(*after, *first);
}

}  // namespace
}  // namespace helpline::matching
