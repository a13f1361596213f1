#include "services/identity/hash_gate.h"

#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/identity/passwords.h"

namespace helpline::identity {
namespace {

TEST(HashGate, ACallerPastItsWaitIsRefusedAndTheNextGetsTheFreedSlot) {
  HashGate gate(1);
  {
    HashGate::Slot held = gate.Acquire(absl::Now() + absl::Seconds(1));
    ASSERT_TRUE(held.status().ok());
    HashGate::Slot refused = gate.Acquire(absl::Now() + absl::Milliseconds(20));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(gate.free(), 0) << "a refused caller holds nothing";
  }
  EXPECT_EQ(gate.free(), 1);
  EXPECT_TRUE(gate.Acquire(absl::Now()).status().ok());
}

TEST(HashGate, AWaitingCallerGoesOnAsSoonAsASlotIsFree) {
  HashGate gate(1);
  auto held = std::make_unique<HashGate::Slot>(gate.Acquire(absl::Now()));
  ASSERT_TRUE(held->status().ok());
  absl::Status waited;
  absl::Duration took;
  std::thread waiter([&] {
    absl::Time started = absl::Now();
    HashGate::Slot slot = gate.Acquire(absl::Now() + absl::Seconds(30));
    took = absl::Now() - started;
    waited = slot.status();
  });
  absl::SleepFor(absl::Milliseconds(50));
  held.reset();
  waiter.join();
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_LT(took, absl::Seconds(10)) << "woken by the release, not by its deadline";
  EXPECT_EQ(gate.free(), 1);
}

TEST(PasswordHasher, VerifiesThroughTheGate) {
  absl::StatusOr<PasswordHasher> hasher = PasswordHasher::Create(
      1, 8 << 10, /*allow_weak=*/true, {.concurrency = 1, .queue_wait = absl::Seconds(5)});
  ASSERT_TRUE(hasher.ok()) << hasher.status();
  absl::StatusOr<std::string> hash = hasher->Hash("correct horse");
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ(hasher->Verify(*hash, "correct horse").value_or(false), true);
  EXPECT_EQ(hasher->Verify(*hash, "wrong horse").value_or(true), false);
  EXPECT_TRUE(hasher->VerifyNothing("anything").ok());
}

}  // namespace
}  // namespace helpline::identity
