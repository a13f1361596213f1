#include "services/runtime/eventsourcing/reactor.h"

#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "helpline/testing/v1/counter.pb.h"

namespace helpline::es {
namespace {

using ::helpline::testing::v1::CounterCommand;
using ::helpline::testing::v1::CounterEvent;

CounterCommand IncrementOf(const std::string& counter, int64_t by) {
  CounterCommand command;
  command.mutable_meta()->set_aggregate_id(counter);
  command.mutable_increment()->set_by(by);
  return command;
}

std::vector<std::string> CommandIds(const Reaction& reaction, const CounterEvent& event) {
  std::vector<std::string> ids;
  for (const kafka::OutgoingRecord& record :
       reaction.Outputs(event, kafka::Record{}, {"counter.from-test", "commands"})) {
    CounterCommand command;
    EXPECT_TRUE(command.ParseFromString(record.value));
    ids.push_back(command.meta().command_id());
  }
  return ids;
}

TEST(ReactionIds, ByContentAnEventsCommandKeepsItsIdWhateverElseIsAnsweredWithIt) {
  CounterEvent event;
  event.mutable_meta()->set_event_id("0190a1b2-0000-7000-8000-000000000001");
  // A read model answers a, b and c at first; after a crash, only b and c
  // are left to do.
  std::vector<CounterCommand> answer = {IncrementOf("a", 1), IncrementOf("b", 1), IncrementOf("b", 2)};
  TypedReaction<CounterEvent, CounterCommand> by_content(
      [&](const CounterEvent&) { return answer; }, ReactionIds::kByContent);
  TypedReaction<CounterEvent, CounterCommand> by_position([&](const CounterEvent&) { return answer; });

  std::vector<std::string> first = CommandIds(by_content, event);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()).size(), 3u)
      << "two commands to one aggregate are told apart by their bodies";
  std::vector<std::string> positional = CommandIds(by_position, event);

  answer.erase(answer.begin());
  std::vector<std::string> again = CommandIds(by_content, event);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0], first[1]);
  EXPECT_EQ(again[1], first[2]);
  std::vector<std::string> positional_again = CommandIds(by_position, event);
  EXPECT_EQ(positional_again[0], positional[0])
      << "by position, b's command would take a's id, which the processor already knows";

  CounterEvent other = event;
  other.mutable_meta()->set_event_id("0190a1b2-0000-7000-8000-000000000002");
  EXPECT_NE(CommandIds(by_content, other)[0], again[0]) << "another event, other commands";
}

}  // namespace
}  // namespace helpline::es
