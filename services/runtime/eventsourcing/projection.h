#pragma once

#include <string_view>

#include "google/protobuf/message.h"

namespace helpline::es {

// What a projection may need of an event's record besides the event: its key
// and whether it is a tombstone (a compacted topic's deletion).
struct EventSource {
  std::string_view key;
  bool tombstone = false;
};

// A read model: a service's in-memory projection of a topic, fed by an
// EventFeed. Apply runs on the feed's thread, one event at a time, in each
// partition's order; the projection guards its own data against the query
// threads. Most projections derive from TypedProjection instead.
class Projection {
 public:
  virtual ~Projection() = default;
  virtual void Apply(const google::protobuf::Message& event, const EventSource& source) = 0;
};

// A projection of one event type: the feed's events arrive as `Event`.
template <class Event>
class TypedProjection : public Projection {
 public:
  virtual void Apply(const Event& event) = 0;

  void Apply(const google::protobuf::Message& event, const EventSource&) final {
    Apply(static_cast<const Event&>(event));
  }
};

}  // namespace helpline::es
