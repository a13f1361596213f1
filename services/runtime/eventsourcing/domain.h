#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"

// How a service describes one aggregate type to the runtime. The service
// writes a Domain struct:
//
//   struct CounterDomain {
//     using Command = helpline::testing::v1::CounterCommand;  // field 1: CommandMeta meta
//     using Event = helpline::testing::v1::CounterEvent;      // field 1: EventMeta meta
//     using State = helpline::testing::v1::CounterState;
//     static absl::StatusOr<std::vector<Event>> Decide(const State&, const Command&,
//                                                      const es::DecideContext&);
//     static void Apply(State&, const Event&);
//     // Optional, for timers:
//     static std::optional<absl::Time> NextDeadline(const State&);
//     static Command OnDeadline(const State&, absl::Time due);
//   };
//
// Decide and Apply are pure: no I/O, no clock (the time is in the context).
// Decide returns the events' payloads; the runtime fills their EventMeta.
// A rejection is an error status (errors::InvalidField for bad input), and
// writes nothing. A timer's command goes through Decide like any other.
namespace helpline::es {

struct DecideContext {
  absl::Time now;
  std::string aggregate_id;
  // Version before this command: 0 for an aggregate that has no events yet.
  int64_t version = 0;
  const runtime::v1::CommandMeta* meta = nullptr;
};

// The command comes from Helpline itself (a reactor, timer or sweep), never
// from a user's call: handlers always set a user as the actor.
inline bool SentByHelpline(const DecideContext& context) {
  return context.meta != nullptr && !context.meta->actor().system().empty();
}

// The type-erased form of a Domain that the processor runs.
class AggregateType {
 public:
  virtual ~AggregateType() = default;
  virtual std::unique_ptr<google::protobuf::Message> NewCommand() const = 0;
  virtual std::unique_ptr<google::protobuf::Message> NewEvent() const = 0;
  virtual std::unique_ptr<google::protobuf::Message> NewState() const = 0;
  virtual runtime::v1::CommandMeta* MutableCommandMeta(google::protobuf::Message& command) const = 0;
  virtual runtime::v1::EventMeta* MutableEventMeta(google::protobuf::Message& event) const = 0;
  virtual absl::StatusOr<std::vector<std::unique_ptr<google::protobuf::Message>>> Decide(
      const google::protobuf::Message& state, const google::protobuf::Message& command,
      const DecideContext& context) const = 0;
  virtual void Apply(google::protobuf::Message& state,
                     const google::protobuf::Message& event) const = 0;
  virtual std::optional<absl::Time> NextDeadline(const google::protobuf::Message& state) const = 0;
  virtual std::unique_ptr<google::protobuf::Message> DeadlineCommand(
      const google::protobuf::Message& state, absl::Time due) const = 0;
};

template <class Domain>
class TypedAggregate : public AggregateType {
 public:
  using Command = typename Domain::Command;
  using Event = typename Domain::Event;
  using State = typename Domain::State;

  std::unique_ptr<google::protobuf::Message> NewCommand() const override {
    return std::make_unique<Command>();
  }
  std::unique_ptr<google::protobuf::Message> NewEvent() const override {
    return std::make_unique<Event>();
  }
  std::unique_ptr<google::protobuf::Message> NewState() const override {
    return std::make_unique<State>();
  }
  runtime::v1::CommandMeta* MutableCommandMeta(google::protobuf::Message& command) const override {
    return static_cast<Command&>(command).mutable_meta();
  }
  runtime::v1::EventMeta* MutableEventMeta(google::protobuf::Message& event) const override {
    return static_cast<Event&>(event).mutable_meta();
  }
  absl::StatusOr<std::vector<std::unique_ptr<google::protobuf::Message>>> Decide(
      const google::protobuf::Message& state, const google::protobuf::Message& command,
      const DecideContext& context) const override {
    absl::StatusOr<std::vector<Event>> events = Domain::Decide(
        static_cast<const State&>(state), static_cast<const Command&>(command), context);
    if (!events.ok()) return events.status();
    std::vector<std::unique_ptr<google::protobuf::Message>> out;
    for (Event& event : *events) out.push_back(std::make_unique<Event>(std::move(event)));
    return out;
  }
  void Apply(google::protobuf::Message& state, const google::protobuf::Message& event) const override {
    Domain::Apply(static_cast<State&>(state), static_cast<const Event&>(event));
  }
  std::optional<absl::Time> NextDeadline(const google::protobuf::Message& state) const override {
    if constexpr (requires(const State& s) { Domain::NextDeadline(s); }) {
      return Domain::NextDeadline(static_cast<const State&>(state));
    } else {
      return std::nullopt;
    }
  }
  std::unique_ptr<google::protobuf::Message> DeadlineCommand(const google::protobuf::Message& state,
                                                             absl::Time due) const override {
    if constexpr (requires(const State& s) { Domain::OnDeadline(s, due); }) {
      return std::make_unique<Command>(Domain::OnDeadline(static_cast<const State&>(state), due));
    } else {
      return nullptr;
    }
  }
};

}  // namespace helpline::es
