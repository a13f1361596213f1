#include "tools/events/event_catalog.h"

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.pb.h"
#include "tools/events/event_streams.h"

namespace helpline::events {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::SourceLocation;

namespace {

constexpr char kSealedText[] = "helpline.identity.v1.SealedText";

// A comment without the space after each "//" and without trailing blank lines.
std::string CleanComment(const std::string& text) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::ConsumePrefix(&line, " ");
    lines.emplace_back(absl::StripTrailingAsciiWhitespace(line));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return absl::StrJoin(lines, "\n");
}

template <class T>
std::string CommentOf(const T* descriptor) {
  SourceLocation location;
  if (!descriptor->GetSourceLocation(&location)) return "";
  std::string text = location.leading_comments;
  if (!location.trailing_comments.empty()) {
    absl::StrAppend(&text, text.empty() ? "" : "\n", location.trailing_comments);
  }
  return CleanComment(text);
}

// Markdown for plain text: angle brackets outside `code` shown, not taken as HTML.
std::string Markdown(const std::string& text) {
  std::string out;
  bool in_code = false;
  for (char c : text) {
    if (c == '`') in_code = !in_code;
    if (!in_code && c == '<') {
      out += "&lt;";
    } else if (!in_code && c == '>') {
      out += "&gt;";
    } else {
      out += c;
    }
  }
  return out;
}

// Text in one table cell: one line, no pipes.
std::string Cell(const std::string& text) {
  std::string out =
      absl::StrReplaceAll(Markdown(text), {{"\n- ", "; "}, {"\n", " "}, {"|", "\\|"}});
  return out.empty() ? " " : out;
}

std::string FirstSentence(const std::string& text) {
  std::string flat = Cell(text);
  size_t end = flat.find(". ");
  return end == std::string::npos ? flat : flat.substr(0, end + 1);
}

std::string Anchor(const std::string& full_name) {
  return absl::StrCat("<a id=\"", full_name, "\"></a>");
}

std::string Link(const std::string& label, const std::string& full_name) {
  return absl::StrCat("[", label, "](#", full_name, ")");
}

bool IsWellKnown(const Descriptor* type) {
  return absl::StartsWith(type->full_name(), "google.protobuf.");
}

std::string WellKnownName(const Descriptor* type) {
  if (type->full_name() == "google.protobuf.Timestamp") return "timestamp";
  if (type->full_name() == "google.protobuf.Duration") return "duration";
  return type->full_name();
}

std::string TypeName(const FieldDescriptor* field) {
  if (field->is_map()) {
    return absl::StrCat("map&lt;", TypeName(field->message_type()->map_key()), ", ",
                        TypeName(field->message_type()->map_value()), "&gt;");
  }
  std::string name;
  if (field->message_type() != nullptr) {
    const Descriptor* type = field->message_type();
    name = IsWellKnown(type) ? WellKnownName(type) : Link(type->name(), type->full_name());
  } else if (field->enum_type() != nullptr) {
    name = Link(field->enum_type()->name(), field->enum_type()->full_name());
  } else {
    name = field->type_name();
  }
  return field->is_repeated() ? absl::StrCat("list of ", name) : name;
}

std::string FieldNote(const FieldDescriptor* field) {
  std::string note = CommentOf(field);
  if (field->message_type() != nullptr && field->message_type()->full_name() == kSealedText) {
    note = absl::StrCat("**Encrypted personal data.** ", note);
  }
  if (field->containing_oneof() != nullptr && field->containing_oneof()->name() != "body") {
    note = absl::StrCat(note, note.empty() ? "" : " ", "(one of `",
                        field->containing_oneof()->name(), "`)");
  }
  return note;
}

std::string FieldsTable(const Descriptor* type) {
  if (type->field_count() == 0) return "No fields: the event itself is the fact.\n";
  std::string out = "| field | type | meaning |\n|---|---|---|\n";
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    absl::StrAppend(&out, "| `", field->name(), "` | ", TypeName(field), " | ",
                    Cell(FieldNote(field)), " |\n");
  }
  return out;
}

std::string EnumTable(const EnumDescriptor* type) {
  std::string out = "| value | number | meaning |\n|---|---|---|\n";
  for (int i = 0; i < type->value_count(); ++i) {
    absl::StrAppend(&out, "| `", type->value(i)->name(), "` | ", type->value(i)->number(), " | ",
                    Cell(CommentOf(type->value(i))), " |\n");
  }
  return out;
}

// Message and enum types the events use, found from their fields.
void CollectTypes(const Descriptor* type, std::map<std::string, const Descriptor*>* messages,
                  std::map<std::string, const EnumDescriptor*>* enums) {
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (field->is_map()) {
      CollectTypes(field->message_type(), messages, enums);
    } else if (field->message_type() != nullptr && !IsWellKnown(field->message_type())) {
      if (messages->emplace(field->message_type()->full_name(), field->message_type()).second) {
        CollectTypes(field->message_type(), messages, enums);
      }
    } else if (field->enum_type() != nullptr) {
      enums->emplace(field->enum_type()->full_name(), field->enum_type());
    }
  }
}

// Paths of the encrypted fields under `type` ("email", "profile.name").
void SealedPaths(const Descriptor* type, const std::string& prefix, int depth,
                 std::vector<std::string>* out) {
  if (depth > 5) return;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (field->message_type() == nullptr || field->is_map()) continue;
    std::string path = absl::StrCat(prefix, field->name());
    if (field->message_type()->full_name() == kSealedText) {
      out->push_back(path);
    } else if (!IsWellKnown(field->message_type())) {
      SealedPaths(field->message_type(), path + ".", depth + 1, out);
    }
  }
}

// The comment above the `package` line: what the file is about.
std::string PackageComment(const FileDescriptor* file) {
  google::protobuf::FileDescriptorProto proto;
  file->CopySourceCodeInfoTo(&proto);
  for (const auto& location : proto.source_code_info().location()) {
    if (location.path_size() == 1 &&
        location.path(0) == google::protobuf::FileDescriptorProto::kPackageFieldNumber) {
      return CleanComment(location.leading_comments());
    }
  }
  return "";
}

std::string Retention(const nlohmann::json& entry) {
  nlohmann::json configs = entry.value("configs", nlohmann::json::object());
  std::vector<std::string> parts;
  if (configs.value("cleanup.policy", "delete").find("compact") != std::string::npos) {
    parts.push_back("compacted (the latest record per key)");
  }
  if (configs.contains("retention.ms")) {
    int64_t millis = 0;
    if (!absl::SimpleAtoi(configs["retention.ms"].get<std::string>(), &millis) || millis < 0) {
      parts.push_back("forever");
    } else if (millis % 86400000 == 0) {
      parts.push_back(absl::StrCat(millis / 86400000, millis == 86400000 ? " day" : " days"));
    } else {
      parts.push_back(absl::StrCat(millis / 3600000, millis == 3600000 ? " hour" : " hours"));
    }
  }
  return absl::StrJoin(parts, ", ");
}

std::string TopicsSection(const nlohmann::json& topics) {
  std::string out = "## Topics\n\n";
  std::vector<std::string> services;
  for (const auto& service : topics.value("services", nlohmann::json::array())) {
    services.push_back(service.get<std::string>());
  }
  absl::StrAppend(&out, "`<service>` is one of ", absl::StrJoin(services, ", "),
                  ". Partitions: 12 by default (the chart's `kafka.topics.partitions`); "
                  "commands and "
                  "events of a service have the same count, so an aggregate's commands and "
                  "events share a partition number.\n\n");
  absl::StrAppend(&out, "| topic | key | value | kept | what it is |\n|---|---|---|---|---|\n");
  const nlohmann::json per_service = topics.value("per_service", nlohmann::json::object());
  const nlohmann::json shared = topics.value("shared", nlohmann::json::object());
  for (const auto& [kind, entry] : per_service.items()) {
    absl::StrAppend(&out, "| `helpline.<service>.", kind, "` | ", Cell(entry.value("key", "")),
                    " | ", Cell(entry.value("value", "")), " | ", Retention(entry), " | ",
                    Cell(entry.value("about", "")), " |\n");
  }
  for (const auto& [name, entry] : shared.items()) {
    absl::StrAppend(&out, "| `", name, "` | ", Cell(entry.value("key", "")), " | ",
                    Cell(entry.value("value", "")), " | ", Retention(entry), " | ",
                    Cell(entry.value("about", "")), " |\n");
  }
  absl::StrAppend(&out, "\nAnalysts read the `events` topics; the others are the services' "
                        "plumbing and are listed for completeness.\n\n");
  return out;
}

constexpr char kIntroduction[] = R"(# Helpline event catalog

<!-- Generated by helpline-event-catalog from proto/ and deploy/topics.json.
Do not edit: change the proto comments, then `tools/docs` copies the build's
build/docs/events.md here (a test fails while the two differ). -->

Every fact Helpline knows is an event on Kafka: who registered, which expert
went online, how long a person waited for a match, how many minutes a session
billed, how the money was split. This page lists every topic and every event
type with its fields, generated from the `.proto` files, so it is always the
schema the services write. How the schemas may change: [schema-evolution.md](schema-evolution.md).
A worked analysis (time to match, minutes delivered, revenue by category):
[analysis.md](analysis.md).

To look at the streams: `build/tools/helpline-events tail` follows every
events topic of the local stack as JSON lines; `helpline-events export
sessions --format csv` writes a range as CSV (`--help` for all options).

)";

constexpr char kGuarantees[] = R"(## What you can rely on

- **One writer per aggregate, in order.** An event's key is its aggregate's
  id (`subject`), so all of an aggregate's events are in one partition, in the
  order they happened, and `meta.aggregate_version` counts them 1, 2, 3 ...
  without gaps. Different aggregates, partitions or services have no order
  between them: join them by id and `meta.correlation_id`, not by offset.
- **Exactly once, if you read committed.** Events are written in Kafka
  transactions together with the commands they answer. Read with
  `isolation.level=read_committed` (librdkafka's default, so also
  confluent-kafka's; the Java client's default is `read_uncommitted`: set it
  there) and every event is there once; `meta.event_id` is unique across Helpline should you need to
  deduplicate a copy you made.
- **Kept forever.** Events topics have no retention limit: a consumer that
  starts from the beginning sees the whole history. Personal data in them is
  encrypted (below), so deleting an account erases it without rewriting the log.
- **Times.** `meta.occurred_at` (the CloudEvents `time`) is when the service
  decided the event, on the service's clock (on the local demo stack that clock
  runs 60x fast). Kafka's record timestamp is when it was written.
- **Money** is an integer amount in the currency's minor unit with its
  ISO 4217 code (`{"currency_code": "EUR", "amount_minor": 1800}` is 18.00 EUR);
  never a floating point number.
- **Newer schemas.** New event types and fields appear without notice within
  `v1`: skip event types you do not know and ignore unknown fields. What may
  change and what never does: [schema-evolution.md](schema-evolution.md).

## Every event's envelope

The value of an events record is the service's envelope message: `meta`
([EventMeta](#helpline.runtime.v1.EventMeta)) and exactly one event in the
oneof `body` (its member name is the event type in snake case, e.g.
`session_ended`). Every record also carries CloudEvents attributes as headers
(binary mode), so tools can route without decoding:

| header | value |
|---|---|
| `ce_specversion` | `1.0` |
| `ce_id` | `meta.event_id` |
| `ce_type` | the event's full protobuf name, e.g. `helpline.sessions.v1.SessionEnded` |
| `ce_source` | `helpline/<service>` |
| `ce_time` | `meta.occurred_at`, RFC 3339 |
| `ce_subject` | `meta.aggregate_id` (the record key) |
| `content-type` | `application/protobuf` |
| `traceparent` | W3C trace context of the request that caused it |

In JSON (`helpline-events`, protobuf's JSON mapping) field names are
lowerCamelCase (`billed_minutes` becomes `billedMinutes`; `--proto-names`
keeps the names below), 64-bit integers are strings, enums are their names,
timestamps are RFC 3339 strings and durations strings of seconds (`"900s"`).

)";

}  // namespace

std::string RenderEventCatalog(const std::vector<const FileDescriptor*>& files,
                               const nlohmann::json& topics) {
  std::vector<EventStream> streams = FindEventStreams(files);
  std::vector<std::string> order;
  for (const auto& service : topics.value("services", nlohmann::json::array())) {
    order.push_back(service.get<std::string>());
  }
  auto rank = [&](const EventStream& stream) {
    return std::find(order.begin(), order.end(), stream.service) - order.begin();
  };
  std::stable_sort(streams.begin(), streams.end(),
                   [&](const EventStream& a, const EventStream& b) { return rank(a) < rank(b); });
  std::string out = kIntroduction;
  absl::StrAppend(&out, TopicsSection(topics), kGuarantees);

  std::map<std::string, const Descriptor*> messages;
  std::map<std::string, const EnumDescriptor*> enums;
  std::vector<std::string> sealed;
  for (const EventStream& stream : streams) {
    CollectTypes(stream.envelope, &messages, &enums);
    for (const FieldDescriptor* field : stream.event_fields) {
      std::vector<std::string> paths;
      SealedPaths(field->message_type(), "", 0, &paths);
      for (const std::string& path : paths) {
        sealed.push_back(absl::StrCat("`", field->message_type()->name(), ".", path, "` (",
                                      stream.service, ")"));
      }
    }
  }
  absl::StrAppend(&out, "## Personal data\n\n",
                  "Events carry personal data only encrypted, as a ",
                  Link("SealedText", kSealedText),
                  " sealed with the user's own data key. The keys live in the compacted "
                  "`helpline.identity.keys` topic and are erased when the account is deleted, "
                  "which makes every copy of the data unreadable (crypto-shredding). "
                  "Encrypted fields: ",
                  sealed.empty() ? "none" : absl::StrJoin(sealed, ", "),
                  ". Users appear by their UUID, emails only as the keyed hash in an email "
                  "claim's id. What people write in catalog, matching and sessions (a "
                  "profile's name, headline and bio, a help request's description, a "
                  "booking's note, a review's text, a refund's or the expert's own "
                  "unpublishing reason) is a string sealed with the author's key "
                  "in that service's `helpline.<service>.keys` topic: "
                  "`hl-sealed:1:<user id>/<key uuid>:<nonce>:<ciphertext>`, erased the same "
                  "way; the APIs show it opened (payments carries a refund's reason on "
                  "sealed). Reasons written by admins and the platform are in clear.\n\n");

  for (const EventStream& stream : streams) {
    const std::string topic = stream.Topic();
    absl::StrAppend(&out, "## ", stream.service, ": `", topic, "`\n\n",
                    Markdown(PackageComment(stream.envelope->file())), "\n\n");
    absl::StrAppend(&out, "Envelope: `", stream.envelope->full_name(),
                    "`. Event types:\n\n| event | what happened |\n|---|---|\n");
    for (const FieldDescriptor* field : stream.event_fields) {
      const Descriptor* type = field->message_type();
      absl::StrAppend(&out, "| ", Link(type->name(), type->full_name()), " | ",
                      FirstSentence(CommentOf(type)), " |\n");
    }
    absl::StrAppend(&out, "\n");
    for (const FieldDescriptor* field : stream.event_fields) {
      const Descriptor* type = field->message_type();
      absl::StrAppend(&out, "### ", Anchor(type->full_name()), type->name(), "\n\n`type` ",
                      "`", type->full_name(), "` · `body` member `", field->name(), "`\n\n");
      std::string comment = CommentOf(type);
      if (!comment.empty()) absl::StrAppend(&out, Markdown(comment), "\n\n");
      absl::StrAppend(&out, FieldsTable(type), "\n");
      messages.erase(type->full_name());
    }
  }

  absl::StrAppend(&out, "## Types the events use\n\n");
  for (const auto& [name, type] : messages) {
    absl::StrAppend(&out, "### ", Anchor(name), name, "\n\n");
    std::string comment = CommentOf(type);
    if (!comment.empty()) absl::StrAppend(&out, Markdown(comment), "\n\n");
    absl::StrAppend(&out, FieldsTable(type), "\n");
  }
  for (const auto& [name, type] : enums) {
    absl::StrAppend(&out, "### ", Anchor(name), name, " (enum)\n\n");
    std::string comment = CommentOf(type);
    if (!comment.empty()) absl::StrAppend(&out, Markdown(comment), "\n\n");
    absl::StrAppend(&out, EnumTable(type), "\n");
  }
  return out;
}

std::vector<std::string> UndocumentedInCatalog(const std::vector<const FileDescriptor*>& files) {
  std::vector<std::string> missing;
  std::map<std::string, const Descriptor*> messages;
  std::map<std::string, const EnumDescriptor*> enums;
  for (const EventStream& stream : FindEventStreams(files)) {
    for (const FieldDescriptor* field : stream.event_fields) {
      if (CommentOf(field->message_type()).empty()) {
        missing.push_back(field->message_type()->full_name());
      }
    }
    CollectTypes(stream.envelope, &messages, &enums);
  }
  for (const auto& [name, type] : messages) {
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      bool numeric = field->cpp_type() != FieldDescriptor::CPPTYPE_STRING &&
                     field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE &&
                     field->cpp_type() != FieldDescriptor::CPPTYPE_ENUM;
      if (numeric && CommentOf(field).empty()) missing.push_back(field->full_name());
    }
  }
  return missing;
}

}  // namespace helpline::events
