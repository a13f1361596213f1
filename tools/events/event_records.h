#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/kafka/client.h"
#include "tools/events/event_streams.h"

namespace helpline::events {

// One events-topic record decoded with its stream's envelope.
struct DecodedEvent {
  const EventStream* stream = nullptr;
  std::unique_ptr<google::protobuf::Message> envelope;
  // The member of `body` that is set.
  const google::protobuf::FieldDescriptor* event_field = nullptr;
  runtime::v1::EventMeta meta;

  // Full protobuf name of the event ("helpline.sessions.v1.SessionEnded").
  const std::string& Type() const;
  const google::protobuf::Message& Payload() const;
};

// INVALID_ARGUMENT saying why the record is not an event of `stream`: no
// value, bytes that are not the envelope, no event in it, or an event type
// newer than this program (its ce_type is named).
absl::StatusOr<DecodedEvent> DecodeEvent(const kafka::Record& record, const EventStream& stream);

struct JsonStyle {
  // The .proto field names ("amount_minor") instead of the protobuf JSON
  // mapping's lowerCamelCase ("amountMinor").
  bool proto_names = false;
};

// The event as one line of CloudEvents JSON (structured mode): the record's
// ce_* headers (the meta's values where a header is missing), traceparent,
// the extensions topic, partition and offset, and `data` = the whole
// envelope (meta and event) in the protobuf JSON mapping.
std::string CloudEventJson(const kafka::Record& record, const DecodedEvent& event,
                           const JsonStyle& style);

// CSV with one column per field: where the record is, the event's meta, then
// the fields of the given event types flattened by their dotted proto paths
// ("price.per_minute.amount_minor"); repeated fields and maps are one JSON
// cell; a field another event type also has shares its column.
class CsvTable {
 public:
  explicit CsvTable(const std::vector<const google::protobuf::Descriptor*>& event_types);

  const std::vector<std::string>& columns() const { return columns_; }
  std::string HeaderLine() const;
  std::string Row(const kafka::Record& record, const DecodedEvent& event) const;

 private:
  struct Column {
    std::string name;
    // Path into the event's JSON (proto field names); empty for the record's and meta's columns.
    std::vector<std::string> path;
  };
  std::vector<std::string> columns_;
  std::vector<Column> payload_columns_;
};

// RFC 4180 quoting: quoted when it holds a comma, a quote or a line break.
std::string CsvCell(const std::string& text);

}  // namespace helpline::events
