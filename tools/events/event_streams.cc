#include "tools/events/event_streams.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/identity/v1/events.pb.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"

namespace helpline::events {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

namespace {

constexpr char kEventMeta[] = "helpline.runtime.v1.EventMeta";

// "helpline/<service>/v1/events.proto" -> service, or "".
std::string ServiceOfFile(const std::string& file_name) {
  std::vector<std::string> parts = absl::StrSplit(file_name, '/');
  if (parts.size() != 4 || parts[0] != "helpline" || parts[2] != "v1" ||
      parts[3] != "events.proto") {
    return "";
  }
  return parts[1];
}

bool IsEnvelope(const Descriptor* message) {
  const FieldDescriptor* meta = message->FindFieldByName("meta");
  if (meta == nullptr || meta->number() != 1 || meta->message_type() == nullptr ||
      meta->message_type()->full_name() != kEventMeta) {
    return false;
  }
  return message->FindOneofByName("body") != nullptr;
}

}  // namespace

std::string EventStream::Topic(const std::string& prefix) const {
  return absl::StrCat(prefix, "helpline.", service, ".events");
}

const FieldDescriptor* EventStream::EventField(const std::string& type_name) const {
  for (const FieldDescriptor* field : event_fields) {
    const Descriptor* type = field->message_type();
    if (type->full_name() == type_name || type->name() == type_name) return field;
  }
  return nullptr;
}

std::vector<EventStream> FindEventStreams(const std::vector<const FileDescriptor*>& files) {
  std::vector<EventStream> streams;
  for (const FileDescriptor* file : files) {
    std::string service = ServiceOfFile(file->name());
    if (service.empty()) continue;
    for (int i = 0; i < file->message_type_count(); ++i) {
      const Descriptor* message = file->message_type(i);
      if (!IsEnvelope(message)) continue;
      EventStream stream{service, message, {}};
      const google::protobuf::OneofDescriptor* body = message->FindOneofByName("body");
      for (int f = 0; f < body->field_count(); ++f) {
        const FieldDescriptor* member = body->field(f);
        if (member->message_type() != nullptr) stream.event_fields.push_back(member);
      }
      streams.push_back(std::move(stream));
    }
  }
  return streams;
}

const std::vector<EventStream>& CompiledEventStreams() {
  static const std::vector<EventStream>* streams = new std::vector<EventStream>(FindEventStreams({
      identity::v1::IdentityEvent::descriptor()->file(),
      catalog::v1::CatalogEvent::descriptor()->file(),
      matching::v1::MatchingEvent::descriptor()->file(),
      sessions::v1::SessionsEvent::descriptor()->file(),
      payments::v1::PaymentsEvent::descriptor()->file(),
  }));
  return *streams;
}

const EventStream* StreamForTopic(const std::vector<EventStream>& streams,
                                  const std::string& topic) {
  for (const EventStream& stream : streams) {
    if (absl::EndsWith(topic, stream.Topic())) return &stream;
  }
  return nullptr;
}

}  // namespace helpline::events
