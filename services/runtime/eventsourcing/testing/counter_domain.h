#pragma once

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/testing/v1/counter.pb.h"
#include "services/runtime/eventsourcing/domain.h"

// The runtime's own example aggregate, for its tests and benchmarks only: a
// counter with an optional limit and one alarm (a timer).
namespace helpline::es::testing {

struct CounterDomain {
  using Command = helpline::testing::v1::CounterCommand;
  using Event = helpline::testing::v1::CounterEvent;
  using State = helpline::testing::v1::CounterState;

  static absl::StatusOr<std::vector<Event>> Decide(const State& state, const Command& command,
                                                   const DecideContext& context);
  static void Apply(State& state, const Event& event);
  static std::optional<absl::Time> NextDeadline(const State& state);
  static Command OnDeadline(const State& state, absl::Time due);
};

inline const AggregateType& CounterType() {
  static const TypedAggregate<CounterDomain> type;
  return type;
}

}  // namespace helpline::es::testing
