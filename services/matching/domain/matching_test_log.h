#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/read_model.h"
#include "services/runtime/core/proto_time.h"

// For matching's unit tests: what the processor does with a command (decide
// as an actor, stamp the events' meta, apply, fire due timers), in memory,
// feeding a read model.
namespace helpline::matching::testing {

class MatchingTestLog {
 public:
  explicit MatchingTestLog(MatchingReadModel* read_model = nullptr) : read_model_(read_model) {}

  // `actor`: a user id, or empty for Helpline itself (dispatcher, timers).
  absl::StatusOr<std::vector<v1::MatchingEvent>> Send(const std::string& aggregate_id,
                                                      v1::MatchingCommand command,
                                                      const std::string& actor = "") {
    v1::MatchingState& state = states_[aggregate_id];
    int64_t& version = versions_[aggregate_id];
    command.mutable_meta()->set_aggregate_id(aggregate_id);
    if (actor.empty()) {
      command.mutable_meta()->mutable_actor()->set_system("test");
    } else {
      command.mutable_meta()->mutable_actor()->set_user_id(actor);
    }
    es::DecideContext context{now, aggregate_id, version, &command.meta()};
    absl::StatusOr<std::vector<v1::MatchingEvent>> events =
        MatchingDomain::Decide(state, command, context);
    if (!events.ok()) return events;
    for (v1::MatchingEvent& event : *events) {
      runtime::v1::EventMeta& meta = *event.mutable_meta();
      meta.set_aggregate_id(aggregate_id);
      meta.set_aggregate_version(++version);
      *meta.mutable_occurred_at() = ToProtoTime(now);
      MatchingDomain::Apply(state, event);
      if (read_model_ != nullptr) read_model_->Apply(event, kafka::Record{});
    }
    return events;
  }

  // Moves the clock and fires every timer due by then, as the processor does.
  std::vector<v1::MatchingEvent> Advance(absl::Duration by) {
    now += by;
    std::vector<v1::MatchingEvent> fired;
    for (auto& [id, state] : states_) {
      for (int guard = 0; guard < 10; ++guard) {
        std::optional<absl::Time> due = MatchingDomain::NextDeadline(state);
        if (!due || *due > now) break;
        absl::StatusOr<std::vector<v1::MatchingEvent>> events =
            Send(id, MatchingDomain::OnDeadline(state, *due));
        if (!events.ok() || events->empty()) break;
        fired.insert(fired.end(), events->begin(), events->end());
      }
    }
    return fired;
  }

  const v1::MatchingState& State(const std::string& aggregate_id) { return states_[aggregate_id]; }

  absl::Time now = absl::FromUnixSeconds(1'798'761'600);  // 2027-01-01 00:00 UTC, a Friday

 private:
  MatchingReadModel* read_model_;
  std::map<std::string, v1::MatchingState> states_;
  std::map<std::string, int64_t> versions_;
};

}  // namespace helpline::matching::testing
