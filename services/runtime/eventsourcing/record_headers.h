#pragma once

#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/kafka/client.h"

// Kafka headers of Helpline's records, so that tools route and filter
// without decoding: CloudEvents binary mode and W3C trace context.
namespace helpline::es {

// Full protobuf name of the payload set in the event's (first) oneof, e.g.
// "helpline.matching.v1.MatchMade"; the event's own name if it has none set.
std::string EventTypeName(const google::protobuf::Message& event);

// ce_id, ce_type, ce_source, ce_time, ce_subject, ce_specversion,
// content-type and traceparent.
std::vector<kafka::Header> EventHeaders(const runtime::v1::EventMeta& meta,
                                        const google::protobuf::Message& event,
                                        const std::string& source, const std::string& traceparent);

// A new W3C traceparent ("00-<trace id>-<span id>-01"); with a valid parent,
// the same trace and a new span.
std::string NewTraceparent(const std::string& parent = "");
// The 32 hex digits of a traceparent's trace id, or "" if it is not one.
std::string TraceIdOf(const std::string& traceparent);

// A record that a consumer could not use, for the dead-letter topic: the
// original key, value and headers, plus why and where it came from.
kafka::OutgoingRecord DeadLetter(const std::string& deadletter_topic, const kafka::Record& original,
                                 const std::string& reason, const std::string& consumer);

}  // namespace helpline::es
