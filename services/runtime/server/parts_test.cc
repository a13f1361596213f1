#include "services/runtime/server/parts.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace helpline::server {
namespace {

using ::testing::ElementsAre;

// A part that writes what happens to it into a shared journal.
struct Recorded {
  std::string name;
  std::vector<std::string>* journal;
  absl::Status outcome = absl::OkStatus();
  bool caught_up = true;

  absl::Status Start() {
    journal->push_back("start " + name);
    return outcome;
  }
  void Stop() { journal->push_back("stop " + name); }
  bool CaughtUp() { return caught_up; }
};

TEST(Parts, StartInOrderAndStopInReverse) {
  std::vector<std::string> journal;
  Recorded feed{"feed", &journal}, processor{"processor", &journal}, front{"front", &journal};
  {
    Parts parts;
    parts.Add("feed", feed).Add("processor", processor).Add("front", front);
    ASSERT_TRUE(parts.StartAll().ok());
    parts.StopAll();
    parts.StopAll();  // once is enough
  }
  EXPECT_THAT(journal, ElementsAre("start feed", "start processor", "start front", "stop front",
                                   "stop processor", "stop feed"));
}

TEST(Parts, AFailedStartStopsWhatStartedAndNothingAfterIt) {
  std::vector<std::string> journal;
  Recorded feed{"feed", &journal}, processor{"processor", &journal}, front{"front", &journal};
  processor.outcome = absl::UnavailableError("no broker");
  Parts parts;
  parts.Add("feed", feed).Add("processor", processor).Add("front", front);
  EXPECT_EQ(parts.StartAll().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(parts.Ready());
  EXPECT_THAT(journal, ElementsAre("start feed", "start processor", "stop feed"));
}

TEST(Parts, ReadyOnceStartedAndEveryPartCaughtUp) {
  std::vector<std::string> journal;
  Recorded feed{"feed", &journal};
  feed.caught_up = false;
  bool loop_ready = true;
  Parts parts;
  parts.Add("feed", feed).Add({"loop", [] { return absl::OkStatus(); }, {}, [&] { return loop_ready; }});
  EXPECT_FALSE(parts.Ready()) << "nothing started yet";
  ASSERT_TRUE(parts.StartAll().ok());
  EXPECT_FALSE(parts.Ready()) << "the feed is behind";
  feed.caught_up = true;
  EXPECT_TRUE(parts.Ready());
  loop_ready = false;
  EXPECT_FALSE(parts.Ready());
}

}  // namespace
}  // namespace helpline::server
