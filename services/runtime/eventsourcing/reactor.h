#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/kafka/consumer.h"
#include "services/runtime/kafka/producer.h"

namespace helpline::es {

// What a reactor does with one event of another service: the commands it
// sends to its own service. Type-erased; see TypedReaction.
class Reaction {
 public:
  virtual ~Reaction() = default;
  virtual std::unique_ptr<google::protobuf::Message> NewEvent() const = 0;
  virtual const runtime::v1::EventMeta& EventMetaOf(const google::protobuf::Message& event) const = 0;
  virtual std::vector<std::unique_ptr<google::protobuf::Message>> React(
      const google::protobuf::Message& event) const = 0;
  virtual runtime::v1::CommandMeta* MutableCommandMeta(google::protobuf::Message& command) const = 0;
};

// `react` returns the commands with meta.aggregate_id set; the reactor fills
// the rest of the meta. It must be pure: the same event, the same commands.
template <class SourceEvent, class TargetCommand>
class TypedReaction : public Reaction {
 public:
  explicit TypedReaction(std::function<std::vector<TargetCommand>(const SourceEvent&)> react)
      : react_(std::move(react)) {}
  std::unique_ptr<google::protobuf::Message> NewEvent() const override {
    return std::make_unique<SourceEvent>();
  }
  const runtime::v1::EventMeta& EventMetaOf(const google::protobuf::Message& event) const override {
    return static_cast<const SourceEvent&>(event).meta();
  }
  std::vector<std::unique_ptr<google::protobuf::Message>> React(
      const google::protobuf::Message& event) const override {
    std::vector<std::unique_ptr<google::protobuf::Message>> out;
    for (TargetCommand& command : react_(static_cast<const SourceEvent&>(event))) {
      out.push_back(std::make_unique<TargetCommand>(std::move(command)));
    }
    return out;
  }
  runtime::v1::CommandMeta* MutableCommandMeta(google::protobuf::Message& command) const override {
    return static_cast<TargetCommand&>(command).mutable_meta();
  }

 private:
  std::function<std::vector<TargetCommand>(const SourceEvent&)> react_;
};

struct ReactorOptions {
  std::string name;              // "identity.expert-approved": group id, actor, command ids
  std::string source_topic;      // another service's events topic
  std::string commands_topic;    // this service's commands topic
  std::string deadletter_topic;
  absl::Duration session_timeout = absl::Seconds(10);
};

// A saga step: consumes another service's events (in a consumer group of its
// own) and sends commands to its own service. The n-th command for an event
// gets the id UUIDv5(event id, "<name>/<n>"), so an event read twice (after a
// crash, a rebalance) sends commands the processor already knows: a no-op.
// Offsets are committed once the commands are in Kafka.
class Reactor {
 public:
  Reactor(kafka::ClientConfig client, ReactorOptions options, const Reaction& reaction);
  ~Reactor();

  absl::Status Start();
  void Stop();
  int64_t events_seen() const { return events_seen_.load(); }

 private:
  void Run();
  absl::Status SendAndCommit(std::vector<kafka::OutgoingRecord>& commands,
                             std::map<int32_t, int64_t>& next_offsets);

  const kafka::ClientConfig client_;
  const ReactorOptions options_;
  const Reaction& reaction_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::Producer> producer_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> events_seen_{0};
  std::thread thread_;
};

}  // namespace helpline::es
