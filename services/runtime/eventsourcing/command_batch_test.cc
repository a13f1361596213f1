#include "services/runtime/eventsourcing/command_batch.h"

#include "gtest/gtest.h"
#include "services/runtime/eventsourcing/partition_state.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"

namespace helpline::es {
namespace {

using testing::CounterDomain;
using testing::CounterType;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

class PartitionBatchTest : public ::testing::Test {
 protected:
  PartitionBatchTest() : state_(CounterType(), absl::Hours(1)) {
    settings_.type = &CounterType();
    settings_.service = "counter";
    settings_.topics = ServiceTopics::For("counter");
  }

  // The record of a command as a reactor (`reply_to` empty) or a front
  // (`reply_to` set) writes it.
  kafka::Record RecordOf(int64_t by, const std::string& reply_to, int64_t offset) {
    CounterDomain::Command command;
    command.mutable_meta()->set_aggregate_id("a");
    command.mutable_meta()->set_command_id("command-" + std::to_string(offset));
    command.mutable_meta()->set_reply_to(reply_to);
    command.mutable_meta()->mutable_actor()->set_system("counter.from-elsewhere");
    command.mutable_increment()->set_by(by);
    command.mutable_increment()->set_limit(5);
    kafka::Record record;
    record.topic = settings_.topics.commands;
    record.offset = offset;
    record.key = "a";
    record.value = command.SerializeAsString();
    return record;
  }

  static std::optional<std::string> Header(const kafka::OutgoingRecord& record,
                                           const std::string& key) {
    for (const kafka::Header& header : record.headers) {
      if (header.key == key) return header.value;
    }
    return std::nullopt;
  }

  BatchSettings settings_;
  PartitionState state_;
};

// Finding 4 of issue 20: a reactor's command that its service refuses had
// nobody to tell and vanished. It goes to the dead letters with the reason
// and counts as "refused" (a metric an alert watches).
TEST_F(PartitionBatchTest, ARefusedCommandNobodyWaitsForGoesToTheDeadLettersWithItsReason) {
  PartitionBatch batch(settings_, 0, state_);
  batch.Decide(RecordOf(3, "", 10), kNow);
  batch.Decide(RecordOf(4, "", 11), kNow);  // 3 + 4 passes the limit of 5
  EXPECT_EQ(batch.event_count(), 1u);
  std::vector<kafka::OutgoingRecord> written = batch.Replies();
  ASSERT_EQ(written.size(), 1u) << "the refusal, and no reply (nobody reads one)";
  EXPECT_EQ(written[0].topic, settings_.topics.deadletter);
  std::optional<std::string> reason = Header(written[0], "dlq_reason");
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("FAILED_PRECONDITION"), std::string::npos) << *reason;
  EXPECT_NE(reason->find("would pass the limit"), std::string::npos) << *reason;
  EXPECT_NE(reason->find("counter.from-elsewhere"), std::string::npos) << *reason;
  EXPECT_EQ(Header(written[0], "dlq_source_offset"), "11");
  EXPECT_EQ(batch.result_counts(), (std::vector<std::string>{"ok", "refused"}));
}

TEST_F(PartitionBatchTest, ARefusalSomeoneWaitsForIsTheirReplyNotADeadLetter) {
  PartitionBatch batch(settings_, 0, state_);
  batch.Decide(RecordOf(9, "front-1", 10), kNow);
  std::vector<kafka::OutgoingRecord> written = batch.Replies();
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].topic, settings_.topics.replies);
  EXPECT_EQ(batch.result_counts(), (std::vector<std::string>{"rejected"}));
}

}  // namespace
}  // namespace helpline::es
