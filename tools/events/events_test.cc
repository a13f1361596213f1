// The analysts' tools without Kafka: the catalog covers every event type and
// is the build's; events decode, become CloudEvents JSON and come back
// unchanged; CSV rows; records that are not events say why; the command line.
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "helpline/payments/v1/events.pb.h"
#include "helpline/sessions/v1/events.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "tests/support/test_stack.h"
#include "tools/events/event_records.h"
#include "tools/events/events_tool.h"

namespace helpline::events {
namespace {

using google::protobuf::util::MessageDifferencer;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const EventStream& Stream(const std::string& service) {
  for (const EventStream& stream : CompiledEventStreams()) {
    if (stream.service == service) return stream;
  }
  ADD_FAILURE() << "no stream " << service;
  return CompiledEventStreams().front();
}

sessions::v1::SessionsEvent SessionEnded() {
  sessions::v1::SessionsEvent event;
  runtime::v1::EventMeta& meta = *event.mutable_meta();
  meta.set_event_id("01937a6e-0000-7000-8000-000000000001");
  meta.set_aggregate_id("help-request:abc");
  meta.set_aggregate_version(5);
  *meta.mutable_occurred_at() = ToProtoTime(absl::FromUnixSeconds(1795000000));
  meta.set_command_id("cmd-1");
  meta.set_correlation_id("corr-1");
  meta.mutable_actor()->set_user_id("person-1");
  sessions::v1::SessionEnded& ended = *event.mutable_session_ended();
  ended.set_reason(sessions::v1::END_REASON_BY_PARTICIPANT);
  ended.set_ended_by("person-1");
  *ended.mutable_at() = ToProtoTime(absl::FromUnixSeconds(1795000000));
  ended.mutable_billing()->set_billed_minutes(12);
  ended.mutable_billing()->mutable_billable()->set_seconds(700);
  ended.mutable_billing()->mutable_amount()->set_currency_code("EUR");
  ended.mutable_billing()->mutable_amount()->set_amount_minor(1800);
  ended.set_person_id("person-1");
  ended.set_expert_id("expert-1");
  ended.set_category_id("bike-repair");
  return event;
}

kafka::Record RecordOf(const google::protobuf::Message& event,
                       const runtime::v1::EventMeta& meta, const std::string& topic,
                       int64_t offset) {
  kafka::Record record;
  record.topic = topic;
  record.partition = 3;
  record.offset = offset;
  record.key = meta.aggregate_id();
  record.value = event.SerializeAsString();
  record.headers = es::EventHeaders(meta, event, "helpline/sessions", "");
  return record;
}

TEST(EventCatalogTest, ListsEveryEventTypeOfEveryService) {
  const std::string catalog = ReadFile(::helpline::testing::SourcePath("docs/events.md"));
  std::vector<std::string> services;
  int types = 0;
  for (const EventStream& stream : CompiledEventStreams()) {
    services.push_back(stream.service);
    EXPECT_NE(catalog.find("`" + stream.Topic() + "`"), std::string::npos) << stream.Topic();
    for (const google::protobuf::FieldDescriptor* field : stream.event_fields) {
      const std::string& name = field->message_type()->full_name();
      EXPECT_NE(catalog.find("<a id=\"" + name + "\"></a>"), std::string::npos)
          << name << " has no section in docs/events.md";
      for (int i = 0; i < field->message_type()->field_count(); ++i) {
        EXPECT_NE(catalog.find("| `" + field->message_type()->field(i)->name() + "` |"),
                  std::string::npos)
            << field->message_type()->field(i)->full_name();
      }
      ++types;
    }
  }
  EXPECT_EQ(services, (std::vector<std::string>{"identity", "catalog", "matching", "sessions",
                                                "payments"}));
  EXPECT_GT(types, 50);
  EXPECT_NE(catalog.find("`UserRegistered.email` (identity)"), std::string::npos)
      << "the encrypted personal data is listed";
}

TEST(EventCatalogTest, CommittedCatalogIsWhatTheBuildGenerates) {
  const std::string committed = ReadFile(::helpline::testing::SourcePath("docs/events.md"));
  const std::string generated = ReadFile(HELPLINE_EVENT_CATALOG);
  ASSERT_FALSE(generated.empty());
  EXPECT_TRUE(committed == generated)
      << "docs/events.md is stale: the protos or deploy/topics.json changed; run tools/docs";
}

TEST(EventRecordsTest, AnEventBecomesCloudEventsJsonAndComesBackUnchanged) {
  sessions::v1::SessionsEvent event = SessionEnded();
  kafka::Record record = RecordOf(event, event.meta(), "t1-helpline.sessions.events", 42);
  absl::StatusOr<DecodedEvent> decoded = DecodeEvent(record, Stream("sessions"));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->Type(), "helpline.sessions.v1.SessionEnded");
  EXPECT_EQ(decoded->meta.aggregate_version(), 5);

  for (bool proto_names : {false, true}) {
    nlohmann::json line =
        nlohmann::json::parse(CloudEventJson(record, *decoded, JsonStyle{proto_names}));
    EXPECT_EQ(line["specversion"], "1.0");
    EXPECT_EQ(line["id"], "01937a6e-0000-7000-8000-000000000001");
    EXPECT_EQ(line["type"], "helpline.sessions.v1.SessionEnded");
    EXPECT_EQ(line["source"], "helpline/sessions");
    EXPECT_EQ(line["subject"], "help-request:abc");
    EXPECT_EQ(line["time"], "2026-11-18T11:06:40Z");
    EXPECT_EQ(line["datacontenttype"], "application/json");
    EXPECT_EQ(line["topic"], "t1-helpline.sessions.events");
    EXPECT_EQ(line["partition"], 3);
    EXPECT_EQ(line["offset"], 42);
    EXPECT_EQ(line["traceparent"].get<std::string>().size(), 55u);
    const nlohmann::json& ended = line["data"][proto_names ? "session_ended" : "sessionEnded"];
    EXPECT_EQ(ended["billing"][proto_names ? "billed_minutes" : "billedMinutes"], 12);
    EXPECT_EQ(ended["billing"]["amount"][proto_names ? "amount_minor" : "amountMinor"], "1800");
    EXPECT_EQ(ended["reason"], "END_REASON_BY_PARTICIPANT");

    sessions::v1::SessionsEvent back;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line["data"].dump(), &back).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(back, event)) << back.DebugString();
  }
}

TEST(EventRecordsTest, CsvFlattensTheFieldsOfTheChosenTypes) {
  CsvTable table({sessions::v1::SessionEnded::descriptor(),
                  sessions::v1::RefundRequested::descriptor()});
  EXPECT_EQ(table.HeaderLine(),
            "topic,partition,offset,event_id,event_type,aggregate_id,aggregate_version,"
            "occurred_at,correlation_id,command_id,actor_user_id,actor_system,"
            "reason,ended_by,at,billing.billable,billing.billed_minutes,"
            "billing.amount.currency_code,billing.amount.amount_minor,person_id,expert_id,"
            "sponsor_program_id,category_id,amount.currency_code,amount.amount_minor");

  sessions::v1::SessionsEvent event = SessionEnded();
  kafka::Record record = RecordOf(event, event.meta(), "helpline.sessions.events", 7);
  absl::StatusOr<DecodedEvent> decoded = DecodeEvent(record, Stream("sessions"));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(table.Row(record, *decoded),
            "helpline.sessions.events,3,7,01937a6e-0000-7000-8000-000000000001,"
            "helpline.sessions.v1.SessionEnded,help-request:abc,5,2026-11-18T11:06:40Z,corr-1,"
            "cmd-1,person-1,,END_REASON_BY_PARTICIPANT,person-1,2026-11-18T11:06:40Z,700s,12,"
            "EUR,1800,person-1,expert-1,,bike-repair,,");

  sessions::v1::SessionsEvent refund;
  *refund.mutable_meta() = event.meta();
  refund.mutable_refund_requested()->set_person_id("person-1");
  refund.mutable_refund_requested()->set_reason("the tyre, \"still\" flat,\nsorry");
  refund.mutable_refund_requested()->mutable_amount()->set_currency_code("EUR");
  refund.mutable_refund_requested()->mutable_amount()->set_amount_minor(1800);
  record = RecordOf(refund, refund.meta(), "helpline.sessions.events", 8);
  decoded = DecodeEvent(record, Stream("sessions"));
  ASSERT_TRUE(decoded.ok());
  // `reason` is a column both types have; the text is quoted (RFC 4180).
  std::string row = table.Row(record, *decoded);
  EXPECT_NE(row.find(",helpline.sessions.v1.RefundRequested,"), std::string::npos) << row;
  EXPECT_NE(
      row.find(",person-1,,\"the tyre, \"\"still\"\" flat,\nsorry\",,,,,,,person-1,,,,EUR,1800"),
      std::string::npos)
      << row;
}

TEST(EventRecordsTest, RecordsThatAreNotEventsSayWhy) {
  const EventStream& stream = Stream("sessions");
  kafka::Record record;
  record.topic = "helpline.sessions.events";
  EXPECT_EQ(DecodeEvent(record, stream).status().message(), "the record has no value");

  record.value = "\xff\xff\xff garbage";
  EXPECT_EQ(DecodeEvent(record, stream).status().message(),
            "the value is not a helpline.sessions.v1.SessionsEvent");

  // A newer schema's event type: a body member this program does not know.
  sessions::v1::SessionsEvent event = SessionEnded();
  event.clear_session_ended();
  record.value = event.SerializeAsString() + std::string("\xfa\x06\x02\x08\x01", 5);  // field 111
  record.headers = {{"ce_type", "helpline.sessions.v1.SessionPaused"}};
  EXPECT_EQ(DecodeEvent(record, stream).status().message(),
            "event type helpline.sessions.v1.SessionPaused is newer than this program's "
            "schema: rebuild helpline-events");

  // Another service's event on this topic.
  payments::v1::PaymentsEvent payment;
  *payment.mutable_meta() = SessionEnded().meta();
  payment.mutable_hold_failed()->set_session_id("s");
  record.value = payment.SerializeAsString();
  record.headers = es::EventHeaders(payment.meta(), payment, "helpline/payments", "");
  EXPECT_EQ(DecodeEvent(record, stream).status().message(),
            "the record's ce_type helpline.payments.v1.HoldFailed is not the event in it "
            "(helpline.sessions.v1.SessionEnded)");
}

TEST(EventsToolArgsTest, TopicsTypesAndPositions) {
  absl::StatusOr<ToolOptions> options = ParseToolArgs(
      {"export", "sessions", "helpline.payments.events", "--topic-prefix", "t1-", "--type",
       "SessionEnded", "--type", "helpline.payments.v1.SessionCaptured", "--from", "5", "--to",
       "2026-11-28T10:00:00Z", "--format", "csv", "--subject", "help-request:*"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_FALSE(options->tail);
  EXPECT_EQ(options->topics,
            (std::vector<std::string>{"t1-helpline.sessions.events",
                                      "t1-helpline.payments.events"}));
  EXPECT_EQ(options->types, (std::set<std::string>{"helpline.sessions.v1.SessionEnded",
                                                   "helpline.payments.v1.SessionCaptured"}));
  EXPECT_EQ(options->from.kind, StreamPosition::Kind::kOffset);
  EXPECT_EQ(options->from.offset, 5);
  EXPECT_EQ(options->to.kind, StreamPosition::Kind::kTime);
  EXPECT_TRUE(options->csv);

  options = ParseToolArgs({"tail"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->topics.size(), 5u);
  EXPECT_EQ(options->from.kind, StreamPosition::Kind::kEnd);
  options = ParseToolArgs({"tail", "matching", "--from", "15m"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->from.kind, StreamPosition::Kind::kTime);
  EXPECT_LT(absl::AbsDuration(options->from.time - (absl::Now() - absl::Minutes(15))),
            absl::Minutes(1));
}

TEST(EventsToolArgsTest, MistakesNameTheFlag) {
  auto error = [](std::vector<std::string> args) {
    return std::string(ParseToolArgs(args).status().message());
  };
  EXPECT_EQ(error({"follow"}), "the first word is tail or export");
  EXPECT_EQ(error({"tail", "--to", "now"}), "--to: only for export");
  EXPECT_EQ(error({"export", "--for", "5s"}), "--for: only for tail");
  EXPECT_EQ(error({"export", "--from", "yesterday"}),
            "--from: 'yesterday' is not beginning, now, an offset, an RFC 3339 time or a duration");
  EXPECT_EQ(error({"export", "--from", "-3"}), "--from: an offset is 0 or more");
  EXPECT_EQ(error({"export", "--format", "xml"}), "--format: jsonl or csv");
  EXPECT_EQ(error({"export", "--max", "0"}), "--max: a count, 1 or more");
  EXPECT_EQ(error({"export", "--bogus", "1"}), "--bogus: unknown option");
  EXPECT_EQ(error({"export", "--type"}), "--type: needs a value");
  EXPECT_EQ(error({"export", "sessions", "--type", "MatchMade"}),
            "--type: no event type 'MatchMade' in the topics read (see docs/events.md)");
  EXPECT_NE(error({"export", "billing"}).find("topic 'billing': not a service's events topic"),
            std::string::npos);
}

}  // namespace
}  // namespace helpline::events
