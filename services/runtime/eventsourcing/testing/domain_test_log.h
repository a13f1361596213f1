#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/projection.h"

// For a service's unit tests: what the processor does with a command
// (decide as an actor, stamp the events' meta, apply, fire due timers), in
// memory, optionally feeding a read model.
namespace helpline::es::testing {

template <class Domain>
class DomainTestLog {
 public:
  using Command = typename Domain::Command;
  using Event = typename Domain::Event;
  using State = typename Domain::State;

  explicit DomainTestLog(Projection* read_model = nullptr) : read_model_(read_model) {}

  // `actor`: a user id, or empty for Helpline itself (a reactor, a timer).
  absl::StatusOr<std::vector<Event>> Send(const std::string& aggregate_id, Command command,
                                          const std::string& actor = "") {
    State& state = states_[aggregate_id];
    int64_t& version = versions_[aggregate_id];
    command.mutable_meta()->set_aggregate_id(aggregate_id);
    if (actor.empty()) {
      command.mutable_meta()->mutable_actor()->set_system("test");
    } else {
      command.mutable_meta()->mutable_actor()->set_user_id(actor);
    }
    DecideContext context{now, aggregate_id, version, &command.meta()};
    absl::StatusOr<std::vector<Event>> events = Domain::Decide(state, command, context);
    if (!events.ok()) return events;
    for (Event& event : *events) {
      runtime::v1::EventMeta& meta = *event.mutable_meta();
      meta.set_aggregate_id(aggregate_id);
      meta.set_aggregate_version(++version);
      *meta.mutable_occurred_at() = ToProtoTime(now);
      Domain::Apply(state, event);
      if (read_model_ != nullptr) read_model_->Apply(event, EventSource{});
    }
    return events;
  }

  // Moves the clock and fires every timer due by then, as the processor does.
  std::vector<Event> Advance(absl::Duration by) {
    now += by;
    std::vector<Event> fired;
    for (auto& [id, state] : states_) {
      for (int guard = 0; guard < 10; ++guard) {
        std::optional<absl::Time> due = Domain::NextDeadline(state);
        if (!due || *due > now) break;
        absl::StatusOr<std::vector<Event>> events = Send(id, Domain::OnDeadline(state, *due));
        if (!events.ok() || events->empty()) break;
        fired.insert(fired.end(), events->begin(), events->end());
      }
    }
    return fired;
  }

  const State& StateOf(const std::string& aggregate_id) { return states_[aggregate_id]; }

  absl::Time now = absl::FromUnixSeconds(1'798'761'600);  // 2027-01-01 00:00 UTC, a Friday

 private:
  Projection* read_model_;
  std::map<std::string, State> states_;
  std::map<std::string, int64_t> versions_;
};

// A Writer whose commands are decided at once by `log`, as the processor
// would: for unit tests of what writes (a dispatcher, a worker). Remembers
// every command it was given.
template <class Domain>
class DomainWriter : public Writer {
 public:
  explicit DomainWriter(DomainTestLog<Domain>& log) : log_(log) {}

  using Writer::Execute;
  absl::StatusOr<runtime::v1::Reply> Execute(google::protobuf::Message& message,
                                             runtime::v1::CommandMeta& meta,
                                             const CommandOrigin& origin, bool) override {
    if (!status_.ok()) return status_;
    auto& command = static_cast<typename Domain::Command&>(message);
    meta.set_command_id(origin.command_id);
    sent.push_back(command);
    absl::StatusOr<std::vector<typename Domain::Event>> events =
        log_.Send(origin.aggregate_id, command, origin.user_id);
    if (!events.ok()) return events.status();
    runtime::v1::Reply reply;
    reply.set_aggregate_id(origin.aggregate_id);
    return reply;
  }

  // Every write fails with `status` from now on (OK: they succeed again).
  void FailWith(absl::Status status) { status_ = std::move(status); }

  std::vector<typename Domain::Command> sent;

 private:
  DomainTestLog<Domain>& log_;
  absl::Status status_;
};

}  // namespace helpline::es::testing
