#include "tools/events/event_records.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/proto_time.h"

namespace helpline::events {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

namespace {

// Types shown as one value (their JSON string), never split into columns.
bool IsLeafMessage(const Descriptor* type) {
  const std::string& name = type->full_name();
  return name == "google.protobuf.Timestamp" || name == "google.protobuf.Duration" ||
         name == "google.protobuf.Struct" || name == "google.protobuf.Value" ||
         name == "google.protobuf.Any" || type->file()->name() == "google/protobuf/wrappers.proto";
}

// Deep enough for every event in proto/; a recursive type stops here as JSON.
constexpr int kMaxColumnDepth = 5;

void AddColumns(const Descriptor* type, const std::vector<std::string>& prefix, int depth,
                std::vector<std::vector<std::string>>* paths) {
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    std::vector<std::string> path = prefix;
    path.push_back(field->name());
    if (field->is_repeated() || field->message_type() == nullptr ||
        IsLeafMessage(field->message_type()) || depth >= kMaxColumnDepth) {
      paths->push_back(std::move(path));
    } else {
      AddColumns(field->message_type(), path, depth + 1, paths);
    }
  }
}

std::string JsonOf(const Message& message, bool proto_names) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = proto_names;
  std::string out;
  // Printing a valid message only fails for an Any whose type is unknown; none is used.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string CellOf(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string FormatTime(const google::protobuf::Timestamp& time) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", FromProtoTime(time), absl::UTCTimeZone());
}

std::string HeaderOr(const kafka::Record& record, const std::string& key,
                     const std::string& fallback) {
  std::optional<std::string> value = record.HeaderValue(key);
  return value.has_value() ? *value : fallback;
}

constexpr const char* kRecordColumns[] = {
    "topic",     "partition",         "offset",      "event_id",       "event_type", "aggregate_id",
    "aggregate_version", "occurred_at", "correlation_id", "command_id", "actor_user_id",
    "actor_system"};

}  // namespace

const std::string& DecodedEvent::Type() const { return event_field->message_type()->full_name(); }

const Message& DecodedEvent::Payload() const {
  return envelope->GetReflection()->GetMessage(*envelope, event_field);
}

absl::StatusOr<DecodedEvent> DecodeEvent(const kafka::Record& record, const EventStream& stream) {
  std::string type_header = HeaderOr(record, "ce_type", "");
  if (record.value.empty()) return absl::InvalidArgumentError("the record has no value");
  DecodedEvent event;
  event.stream = &stream;
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(stream.envelope);
  event.envelope.reset(prototype->New());
  if (!event.envelope->ParseFromString(record.value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the value is not a ", stream.envelope->full_name()));
  }
  const google::protobuf::Reflection* reflection = event.envelope->GetReflection();
  event.event_field = reflection->GetOneofFieldDescriptor(
      *event.envelope, stream.envelope->FindOneofByName("body"));
  if (event.event_field == nullptr) {
    if (reflection->GetUnknownFields(*event.envelope).field_count() > 0 && !type_header.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("event type ", type_header,
                       " is newer than this program's schema: rebuild helpline-events"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("the value is not a ", stream.envelope->full_name(), " (no event in it)"));
  }
  if (!type_header.empty() && type_header != event.Type()) {
    return absl::InvalidArgumentError(absl::StrCat("the record's ce_type ", type_header,
                                                   " is not the event in it (", event.Type(),
                                                   ")"));
  }
  const Message& meta =
      reflection->GetMessage(*event.envelope, stream.envelope->FindFieldByName("meta"));
  event.meta.ParseFromString(meta.SerializeAsString());
  if (event.meta.event_id().empty()) {
    return absl::InvalidArgumentError("the event has no meta.event_id");
  }
  return event;
}

std::string CloudEventJson(const kafka::Record& record, const DecodedEvent& event,
                           const JsonStyle& style) {
  nlohmann::ordered_json attributes = {
      {"specversion", HeaderOr(record, "ce_specversion", "1.0")},
      {"id", HeaderOr(record, "ce_id", event.meta.event_id())},
      {"source", HeaderOr(record, "ce_source", absl::StrCat("helpline/", event.stream->service))},
      {"type", HeaderOr(record, "ce_type", event.Type())},
      {"subject", HeaderOr(record, "ce_subject", event.meta.aggregate_id())},
      {"time", HeaderOr(record, "ce_time", FormatTime(event.meta.occurred_at()))},
      {"datacontenttype", "application/json"},
  };
  if (std::optional<std::string> traceparent = record.HeaderValue("traceparent")) {
    attributes["traceparent"] = *traceparent;
  }
  attributes["topic"] = record.topic;
  attributes["partition"] = record.partition;
  attributes["offset"] = record.offset;
  std::string line = attributes.dump();
  line.pop_back();
  absl::StrAppend(&line, ",\"data\":", JsonOf(*event.envelope, style.proto_names), "}");
  return line;
}

CsvTable::CsvTable(const std::vector<const Descriptor*>& event_types) {
  std::set<std::string> taken;
  for (const char* name : kRecordColumns) {
    columns_.push_back(name);
    taken.insert(name);
  }
  for (const Descriptor* type : event_types) {
    std::vector<std::vector<std::string>> paths;
    AddColumns(type, {}, 0, &paths);
    for (std::vector<std::string>& path : paths) {
      std::string name = absl::StrJoin(path, ".");
      if (taken.count(name) > 0) {
        bool is_record_column = std::find(std::begin(kRecordColumns), std::end(kRecordColumns),
                                          name) != std::end(kRecordColumns);
        if (!is_record_column) continue;  // shared with an earlier event type
        name = absl::StrCat("data.", name);
        if (taken.count(name) > 0) continue;
      }
      taken.insert(name);
      columns_.push_back(name);
      payload_columns_.push_back(Column{name, std::move(path)});
    }
  }
}

std::string CsvTable::HeaderLine() const {
  std::vector<std::string> cells;
  for (const std::string& column : columns_) cells.push_back(CsvCell(column));
  return absl::StrJoin(cells, ",");
}

std::string CsvTable::Row(const kafka::Record& record, const DecodedEvent& event) const {
  const runtime::v1::EventMeta& meta = event.meta;
  std::vector<std::string> cells = {
      record.topic,
      std::to_string(record.partition),
      std::to_string(record.offset),
      meta.event_id(),
      event.Type(),
      meta.aggregate_id(),
      std::to_string(meta.aggregate_version()),
      FormatTime(meta.occurred_at()),
      meta.correlation_id(),
      meta.command_id(),
      meta.actor().user_id(),
      meta.actor().system(),
  };
  nlohmann::json payload = nlohmann::json::parse(JsonOf(event.Payload(), true));
  for (const Column& column : payload_columns_) {
    const nlohmann::json* value = &payload;
    for (const std::string& step : column.path) {
      if (!value->is_object() || !value->contains(step)) {
        value = nullptr;
        break;
      }
      value = &(*value)[step];
    }
    cells.push_back(value == nullptr ? "" : CellOf(*value));
  }
  for (std::string& cell : cells) cell = CsvCell(cell);
  return absl::StrJoin(cells, ",");
}

std::string CsvCell(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

}  // namespace helpline::events
