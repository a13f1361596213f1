#pragma once

#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"

namespace helpline::events {

// One service's events topic, as its protos define it: the envelope
// `helpline.<service>.v1.<Service>Event` with `EventMeta meta = 1` and a
// `oneof body` whose members are the event types.
struct EventStream {
  std::string service;
  const google::protobuf::Descriptor* envelope = nullptr;
  // The members of `body`, in field order: one per event type.
  std::vector<const google::protobuf::FieldDescriptor*> event_fields;

  // "helpline.<service>.events", after the tests' prefix.
  std::string Topic(const std::string& prefix = "") const;
  // The member of `body` whose message is `type_name` (full name, or the
  // short name as in "SessionEnded"); nullptr when none.
  const google::protobuf::FieldDescriptor* EventField(const std::string& type_name) const;
};

// The streams these files define: each `helpline/<service>/v1/events.proto`
// holding such an envelope.
std::vector<EventStream> FindEventStreams(
    const std::vector<const google::protobuf::FileDescriptor*>& files);

// The five services' streams as compiled into this program.
const std::vector<EventStream>& CompiledEventStreams();

// The stream whose topic is `topic` (with any prefix before "helpline."),
// or nullptr.
const EventStream* StreamForTopic(const std::vector<EventStream>& streams,
                                  const std::string& topic);

}  // namespace helpline::events
