#include "services/runtime/server/stream_slots.h"

#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "services/runtime/core/errors.h"

namespace helpline::server {
namespace {

TEST(StreamSlotsTest, OneCallerCannotTakeTheServersShare) {
  StreamSlots slots(/*per_caller=*/2, /*total=*/3);
  std::vector<StreamSlots::Slot> mine;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<StreamSlots::Slot> slot = slots.Take("user-a");
    ASSERT_TRUE(slot.ok());
    mine.push_back(*std::move(slot));
  }
  absl::Status third = slots.Take("user-a").status();
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(errors::RetryAfter(third).has_value());
  std::optional<StreamSlots::Slot> other(*slots.Take("user-b"));
  EXPECT_EQ(slots.Take("user-c").status().code(), absl::StatusCode::kResourceExhausted)
      << "the server's total";
  other.reset();
  EXPECT_TRUE(slots.Take("user-c").ok()) << "a closed stream gives its place back";
  EXPECT_EQ(slots.open(), 2) << "the taken-and-dropped slot came back too";
  mine.pop_back();
  EXPECT_TRUE(slots.Take("user-a").ok());
}

}  // namespace
}  // namespace helpline::server
