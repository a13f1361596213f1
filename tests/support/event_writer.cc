#include "tests/support/event_writer.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/eventsourcing/topics.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {

EventWriter::EventWriter(const std::string& service, const std::string& prefix)
    : source_("helpline/" + service), topic_(es::ServiceTopics::For(service, prefix).events) {
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
      kafka::Producer::Create(TestKafka(), kafka::ProducerOptions{});
  EXPECT_TRUE(producer.ok()) << producer.status();
  if (producer.ok()) producer_ = *std::move(producer);
}

absl::Status EventWriter::Write(const std::string& aggregate_id, google::protobuf::Message& event,
                                runtime::v1::EventMeta& meta) {
  meta.set_event_id(ids::NewUuidV7());
  meta.set_aggregate_id(aggregate_id);
  {
    absl::MutexLock lock(&mutex_);
    meta.set_aggregate_version(++versions_[aggregate_id]);
  }
  *meta.mutable_occurred_at() = ToProtoTime(absl::Now());
  meta.set_command_id(ids::NewUuidV7());
  meta.set_correlation_id(meta.command_id());
  meta.mutable_actor()->set_system("test");
  return Rewrite(event, meta);
}

absl::Status EventWriter::Rewrite(const google::protobuf::Message& event,
                                  const runtime::v1::EventMeta& meta) {
  if (producer_ == nullptr) return absl::UnavailableError("no producer");
  kafka::Delivery delivery = producer_->ProduceAndWait(kafka::OutgoingRecord{
      topic_, std::nullopt, meta.aggregate_id(), event.SerializeAsString(),
      es::EventHeaders(meta, event, source_, es::NewTraceparent())});
  return delivery.status;
}

}  // namespace helpline::testing
