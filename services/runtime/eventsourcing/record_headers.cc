#include "services/runtime/eventsourcing/record_headers.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::es {
namespace {

std::string RandomHex(int bytes) {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::string out;
  while (static_cast<int>(out.size()) < bytes * 2) {
    out += absl::StrFormat("%016x", generator());
  }
  out.resize(bytes * 2);
  return out;
}

bool IsHex(const std::string& text) {
  return text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string EventTypeName(const google::protobuf::Message& event) {
  const google::protobuf::Descriptor* descriptor = event.GetDescriptor();
  const google::protobuf::Reflection* reflection = event.GetReflection();
  for (int i = 0; i < descriptor->oneof_decl_count(); ++i) {
    const google::protobuf::FieldDescriptor* field =
        reflection->GetOneofFieldDescriptor(event, descriptor->oneof_decl(i));
    if (field != nullptr && field->message_type() != nullptr) {
      return field->message_type()->full_name();
    }
  }
  return descriptor->full_name();
}

std::vector<kafka::Header> EventHeaders(const runtime::v1::EventMeta& meta,
                                        const google::protobuf::Message& event,
                                        const std::string& source, const std::string& traceparent) {
  absl::Time time = FromProtoTime(meta.occurred_at());
  return {
      {"ce_specversion", "1.0"},
      {"ce_id", meta.event_id()},
      {"ce_type", EventTypeName(event)},
      {"ce_source", source},
      {"ce_time", absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", time, absl::UTCTimeZone())},
      {"ce_subject", meta.aggregate_id()},
      {"content-type", "application/protobuf"},
      {"traceparent", traceparent.empty() ? NewTraceparent() : traceparent},
  };
}

std::string TraceIdOf(const std::string& traceparent) {
  // version "-" trace-id(32) "-" parent-id(16) "-" flags(2)
  if (traceparent.size() != 55 || traceparent[2] != '-' || traceparent[35] != '-' ||
      traceparent[52] != '-') {
    return "";
  }
  std::string trace_id = traceparent.substr(3, 32);
  if (!IsHex(trace_id) || trace_id == std::string(32, '0')) return "";
  return trace_id;
}

std::string NewTraceparent(const std::string& parent) {
  std::string trace_id = TraceIdOf(parent);
  if (trace_id.empty()) trace_id = RandomHex(16);
  return absl::StrCat("00-", trace_id, "-", RandomHex(8), "-01");
}

kafka::OutgoingRecord DeadLetter(const std::string& deadletter_topic, const kafka::Record& original,
                                 const std::string& reason, const std::string& consumer) {
  kafka::OutgoingRecord record;
  record.topic = deadletter_topic;
  record.key = original.key;
  record.value = original.value;
  record.headers = original.headers;
  record.headers.push_back({"dlq_reason", reason});
  record.headers.push_back({"dlq_consumer", consumer});
  record.headers.push_back({"dlq_source_topic", original.topic});
  record.headers.push_back({"dlq_source_partition", std::to_string(original.partition)});
  record.headers.push_back({"dlq_source_offset", std::to_string(original.offset)});
  return record;
}

}  // namespace helpline::es
