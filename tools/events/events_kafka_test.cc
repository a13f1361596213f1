// helpline-events against the test run's Kafka: an export of a known set of
// events gives the expected CSV rows, a record that is not an event is
// reported and skipped, offsets and subjects bound a range, tail follows.
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/sessions/v1/events.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/producer.h"
#include "tests/support/event_writer.h"
#include "tests/support/test_stack.h"
#include "tools/events/events_tool.h"

namespace helpline::events {
namespace {

using ::helpline::testing::EventWriter;
using ::helpline::testing::TestKafka;

class EventsKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = ::helpline::testing::UniqueName("events") + "-";
    ::helpline::testing::CreateServiceTopics("sessions", prefix_, 1);
    writer_ = std::make_unique<EventWriter>("sessions", prefix_);
  }

  // A session created in `category` and ended after `minutes` at 1.50 a minute.
  void WriteSession(const std::string& id, const std::string& category, int minutes) {
    sessions::v1::SessionsEvent created;
    created.mutable_session_created()->set_category_id(category);
    created.mutable_session_created()->set_max_minutes(30);
    ASSERT_TRUE(writer_->Write(id, created).ok());
    sessions::v1::SessionsEvent ended;
    ended.mutable_session_ended()->set_reason(sessions::v1::END_REASON_BY_PARTICIPANT);
    ended.mutable_session_ended()->set_category_id(category);
    ended.mutable_session_ended()->mutable_billing()->set_billed_minutes(minutes);
    ended.mutable_session_ended()->mutable_billing()->mutable_amount()->set_currency_code("EUR");
    ended.mutable_session_ended()->mutable_billing()->mutable_amount()->set_amount_minor(
        150 * minutes);
    ASSERT_TRUE(writer_->Write(id, ended).ok());
  }

  int64_t WriteGarbage(const std::string& key) {
    absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
        kafka::Producer::Create(TestKafka(), kafka::ProducerOptions{});
    EXPECT_TRUE(producer.ok());
    kafka::OutgoingRecord record;
    record.topic = Topic();
    record.key = key;
    record.value = "not protobuf";
    record.headers = {{"ce_type", "helpline.sessions.v1.SessionEnded"}};
    kafka::Delivery delivery = (*producer)->ProduceAndWait(record);
    EXPECT_TRUE(delivery.status.ok()) << delivery.status;
    return delivery.offset;
  }

  std::string Topic() const { return es::ServiceTopics::For("sessions", prefix_).events; }

  struct Run {
    ToolSummary summary;
    std::string out;
    std::string err;
  };

  Run RunWith(std::vector<std::string> args, const std::atomic<bool>& stop = never_) {
    // As the analysts' principal: what `helpline-events` is for.
    args.insert(args.end(), {"--topic-prefix", prefix_});
    for (std::string& flag : ::helpline::testing::KafkaFlags(
             ::helpline::testing::StackKafka(::helpline::testing::TestStackDir(), "analyst"))) {
      args.push_back(std::move(flag));
    }
    absl::StatusOr<ToolOptions> options = ParseToolArgs(args);
    EXPECT_TRUE(options.ok()) << options.status();
    std::ostringstream out, err;
    absl::StatusOr<ToolSummary> summary = RunTool(*options, out, err, stop);
    EXPECT_TRUE(summary.ok()) << summary.status();
    return Run{summary.value_or(ToolSummary{}), out.str(), err.str()};
  }

  static std::vector<std::string> Lines(const std::string& text) {
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }

  static inline const std::atomic<bool> never_{false};
  std::string prefix_;
  std::unique_ptr<EventWriter> writer_;
};

TEST_F(EventsKafkaTest, ExportsKnownEventsAsCsvRowsAndSkipsWhatIsNotAnEvent) {
  WriteSession("session-a", "bike-repair", 12);
  int64_t garbage = WriteGarbage("session-x");
  WriteSession("session-b", "cooking", 5);

  Run run = RunWith({"export", "sessions", "--format", "csv", "--type", "SessionEnded"});
  EXPECT_EQ(run.summary.written, 2);
  EXPECT_EQ(run.summary.undecodable, 1);
  EXPECT_NE(run.err.find(absl::StrCat("skipped ", Topic(), "[0]@", garbage,
                                      ": the value is not a helpline.sessions.v1.SessionsEvent")),
            std::string::npos)
      << run.err;

  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  auto column = [&](const std::string& row, const std::string& name) {
    std::vector<std::string> cells = absl::StrSplit(row, ',');
    size_t at = std::find(header.begin(), header.end(), name) - header.begin();
    EXPECT_LT(at, cells.size()) << name;
    return at < cells.size() ? cells[at] : "";
  };
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    rows.push_back({column(lines[i], "aggregate_id"), column(lines[i], "event_type"),
                    column(lines[i], "aggregate_version"), column(lines[i], "category_id"),
                    column(lines[i], "billing.billed_minutes"),
                    column(lines[i], "billing.amount.currency_code"),
                    column(lines[i], "billing.amount.amount_minor"), column(lines[i], "reason")});
  }
  EXPECT_EQ(rows, (std::vector<std::vector<std::string>>{
                      {"session-a", "helpline.sessions.v1.SessionEnded", "2", "bike-repair", "12",
                       "EUR", "1800", "END_REASON_BY_PARTICIPANT"},
                      {"session-b", "helpline.sessions.v1.SessionEnded", "2", "cooking", "5",
                       "EUR", "750", "END_REASON_BY_PARTICIPANT"}}));
}

TEST_F(EventsKafkaTest, OffsetsAndSubjectsBoundTheRange) {
  WriteSession("session-a", "bike-repair", 1);  // offsets 0, 1
  WriteSession("session-b", "bike-repair", 2);  // 2, 3
  WriteSession("session-c", "cooking", 3);      // 4, 5

  Run middle = RunWith({"export", "--from", "1", "--to", "4", "sessions"});
  std::vector<std::string> offsets;
  for (const std::string& line : Lines(middle.out)) {
    offsets.push_back(std::to_string(nlohmann::json::parse(line)["offset"].get<int64_t>()));
  }
  EXPECT_EQ(offsets, (std::vector<std::string>{"1", "2", "3"}));

  Run one = RunWith({"export", "sessions", "--subject", "session-b", "--proto-names"});
  std::vector<std::string> types;
  for (const std::string& line : Lines(one.out)) {
    nlohmann::json event = nlohmann::json::parse(line);
    EXPECT_EQ(event["subject"], "session-b");
    EXPECT_EQ(event["data"]["meta"]["aggregate_id"], "session-b");
    types.push_back(event["type"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"helpline.sessions.v1.SessionCreated",
                                             "helpline.sessions.v1.SessionEnded"}));
  EXPECT_EQ(RunWith({"export", "sessions", "--subject", "session-*", "--max", "4"}).summary.written,
            4);
  EXPECT_EQ(RunWith({"export", "sessions", "--from", "now"}).summary.written, 0);
}

TEST_F(EventsKafkaTest, RecordTimesBoundTheRange) {
  WriteSession("session-early", "bike-repair", 1);
  absl::Time last_early = absl::InfinitePast();
  for (const kafka::Record& record : ::helpline::testing::ReadToEnd(Topic(), 1)) {
    last_early = std::max(last_early, record.timestamp);
  }
  const absl::Time cut = last_early + absl::Milliseconds(1);
  while (absl::Now() <= cut + absl::Milliseconds(1)) {
  }  // the next records' timestamps (milliseconds) fall after the cut
  WriteSession("session-late", "bike-repair", 2);

  const std::string at = absl::FormatTime(absl::RFC3339_full, cut, absl::UTCTimeZone());
  auto subjects = [](const Run& run) {
    std::vector<std::string> out;
    for (const std::string& line : Lines(run.out)) {
      out.push_back(nlohmann::json::parse(line)["subject"]);
    }
    return out;
  };
  EXPECT_EQ(subjects(RunWith({"export", "sessions", "--from", at})),
            (std::vector<std::string>{"session-late", "session-late"}));
  EXPECT_EQ(subjects(RunWith({"export", "sessions", "--to", at})),
            (std::vector<std::string>{"session-early", "session-early"}));
}

TEST_F(EventsKafkaTest, TailFollowsNewEventsUntilItHasEnough) {
  WriteSession("session-old", "bike-repair", 1);  // offsets 0, 1
  Run tail_result;
  std::thread tail([&] {
    tail_result = RunWith({"tail", "sessions", "--from", "2", "--max", "3", "--for", "60s"});
  });
  WriteSession("session-new", "cooking", 2);
  sessions::v1::SessionsEvent review;
  review.mutable_review_submitted()->set_stars(5);
  ASSERT_TRUE(writer_->Write("session-new", review).ok());
  tail.join();

  std::vector<std::string> seen;
  for (const std::string& line : Lines(tail_result.out)) {
    nlohmann::json event = nlohmann::json::parse(line);
    seen.push_back(absl::StrCat(event["subject"].get<std::string>(), " ",
                                event["type"].get<std::string>()));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"session-new helpline.sessions.v1.SessionCreated",
                                            "session-new helpline.sessions.v1.SessionEnded",
                                            "session-new helpline.sessions.v1.ReviewSubmitted"}));

  std::atomic<bool> stop{true};
  EXPECT_EQ(RunWith({"tail", "sessions"}, stop).summary.written, 0) << "a stop request ends it";
}

}  // namespace
}  // namespace helpline::events
