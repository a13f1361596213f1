#include "services/runtime/eventsourcing/command_batch.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/server/log.h"

namespace helpline::es {

using google::protobuf::Message;

PartitionBatch::PartitionBatch(const BatchSettings& settings, int32_t partition,
                               PartitionState& state)
    : settings_(settings),
      partition_(partition),
      state_(state),
      source_(absl::StrCat("helpline/", settings.service)) {}

WorkingAggregate& PartitionBatch::Get(const std::string& aggregate_id) {
  auto it = working_.find(aggregate_id);
  if (it != working_.end()) return it->second;
  return working_.emplace(aggregate_id, state_.Checkout(aggregate_id)).first->second;
}

void PartitionBatch::Decide(const kafka::Record& record, absl::Time now) {
  if (command_ == nullptr) command_ = settings_.type->NewCommand();
  command_->Clear();
  const size_t events_before = event_sources_.size();
  if (!command_->ParseFromString(record.value)) {
    DeadLetter(record, absl::StrCat("not a ", command_->GetDescriptor()->full_name()));
  } else {
    Decide(*command_, now, &record);
  }
  if (event_sources_.size() == events_before) command_without_events_ = true;
}

void PartitionBatch::FireDueTimers(absl::Time now, size_t limit) {
  const AggregateType& type = *settings_.type;
  for (const std::string& aggregate_id : state_.DueTimers(now, limit)) {
    WorkingAggregate& record = Get(aggregate_id);
    std::optional<absl::Time> deadline = type.NextDeadline(*record.state);
    // A command earlier in this batch moved the deadline: Commit files the
    // new one.
    if (!deadline.has_value() || *deadline > now) continue;
    std::unique_ptr<Message> timer_command = type.DeadlineCommand(*record.state, *deadline);
    int64_t version_before = record.version;
    if (timer_command != nullptr) {
      runtime::v1::CommandMeta& meta = *type.MutableCommandMeta(*timer_command);
      meta.set_command_id(ids::DerivedCommandId(
          aggregate_id, absl::StrCat("timer/", record.version, "/", absl::ToUnixNanos(*deadline))));
      meta.set_aggregate_id(aggregate_id);
      meta.set_correlation_id(meta.command_id());
      meta.mutable_actor()->set_system(absl::StrCat(settings_.service, ".timer"));
      Decide(*timer_command, now, nullptr);
    }
    WorkingAggregate& after = Get(aggregate_id);
    if (after.version == version_before) after.timer_suppressed_at_version = after.version;
  }
}

void PartitionBatch::DeadLetter(const kafka::Record& record, const std::string& reason,
                                const char* result) {
  if (settings_.log_dead_letters) {
    log::Warn("command sent to the dead-letter topic",
              {{"partition", partition_}, {"offset", record.offset}, {"reason", reason}});
  }
  dead_letters_.push_back(es::DeadLetter(settings_.topics.deadletter, record, reason,
                                         absl::StrCat(settings_.service, "-processor")));
  result_counts_.push_back(result);
}

void PartitionBatch::Decide(Message& command, absl::Time now, const kafka::Record* source) {
  const AggregateType& type = *settings_.type;
  runtime::v1::CommandMeta& meta = *type.MutableCommandMeta(command);
  PendingReply pending;
  pending.reply.set_command_id(meta.command_id());
  pending.reply.set_aggregate_id(meta.aggregate_id());
  pending.reply.set_events_partition(partition_);
  pending.reply.set_last_event_offset(-1);
  pending.partition = meta.reply_partition();
  pending.key = meta.reply_to();
  auto answer = [&](const absl::Status& status, const char* result) {
    // Nobody waits for a reactor's command: its refusal must not vanish.
    if (!status.ok() && meta.reply_to().empty() && source != nullptr) {
      DeadLetter(*source,
                 absl::StrCat("refused: ", absl::StatusCodeToString(status.code()), ": ",
                              status.message(), " (command ", meta.command_id(), " from ",
                              meta.actor().system().empty() ? "a sender with no reply address"
                                                            : meta.actor().system(),
                              ")"),
                 "refused");
      return;
    }
    errors::ToReply(status, &pending.reply);
    if (!meta.reply_to().empty()) {
      if (pending.partition >= 0 && (settings_.replies_partitions == 0 ||
                                     pending.partition < settings_.replies_partitions)) {
        replies_.push_back(pending);
      } else {
        log::Warn("reply addressed to a partition the replies topic does not have; not sent",
                  {{"command_id", meta.command_id()}, {"reply_partition", pending.partition}});
        if (pending.partition >= settings_.replies_partitions) ++misaddressed_replies_;
      }
    }
    result_counts_.push_back(result);
  };

  if (meta.command_id().empty() || meta.aggregate_id().empty()) {
    answer(errors::InvalidField(meta.command_id().empty() ? "meta.command_id" : "meta.aggregate_id",
                                "is required"),
           "rejected");
    return;
  }
  if (source != nullptr && source->key != meta.aggregate_id()) {
    answer(errors::InvalidField("meta.aggregate_id", "must equal the record key"), "rejected");
    return;
  }

  WorkingAggregate& record = Get(meta.aggregate_id());
  pending.reply.set_aggregate_version(record.version);
  if (record.FindHandled(meta.command_id()) != nullptr) {
    pending.reply.set_duplicate(true);
    answer(absl::OkStatus(), "duplicate");
    return;
  }
  if (meta.expected_version() != 0 && meta.expected_version() != record.version) {
    answer(absl::AbortedError(absl::StrCat("aggregate ", meta.aggregate_id(), " is at version ",
                                           record.version, "; the command expected version ",
                                           meta.expected_version())),
           "rejected");
    return;
  }

  DecideContext context{now, meta.aggregate_id(), record.version, &meta};
  absl::StatusOr<std::vector<std::unique_ptr<Message>>> events;
  try {
    events = type.Decide(*record.state, command, context);
  } catch (const std::exception& e) {
    events = absl::InternalError(absl::StrCat("decide failed: ", e.what()));
  }
  if (!events.ok()) {
    answer(events.status(), "rejected");
    return;
  }
  for (const auto& event : *events) {
    if (event->ByteSizeLong() > settings_.max_event_bytes) {
      answer(absl::ResourceExhaustedError(absl::StrCat(
                 "an event of this command would take ", event->ByteSizeLong(),
                 " bytes; the limit is ", settings_.max_event_bytes)),
             "rejected");
      return;
    }
  }
  for (auto& event : *events) {
    runtime::v1::EventMeta& event_meta = *type.MutableEventMeta(*event);
    // Named by what it is, not by chance: deciding it again names it the same.
    event_meta.set_event_id(ids::EventUuidV7(absl::ToUnixMillis(context.now), settings_.service,
                                             meta.aggregate_id(), record.version + 1));
    event_meta.set_aggregate_id(meta.aggregate_id());
    event_meta.set_aggregate_version(record.version + 1);
    *event_meta.mutable_occurred_at() = ToProtoTime(context.now);
    event_meta.set_command_id(meta.command_id());
    event_meta.set_correlation_id(meta.correlation_id().empty() ? meta.command_id()
                                                                : meta.correlation_id());
    *event_meta.mutable_actor() = meta.actor();
    ApplyEvent(type, *event, -1, *record.state, record.version, record.last_event_offset,
               record.new_handled);
    events_.push_back({settings_.topics.events, partition_, meta.aggregate_id(),
                       event->SerializeAsString(),
                       EventHeaders(event_meta, *event, source_, NewTraceparent(meta.traceparent()))});
    event_sources_.emplace_back(meta.aggregate_id(), meta.command_id());
  }
  for (auto& event : *events) record.events.push_back(std::move(event));
  pending.reply.set_aggregate_version(record.version);
  answer(absl::OkStatus(), "ok");
}

std::vector<kafka::OutgoingRecord> PartitionBatch::Replies() {
  std::vector<kafka::OutgoingRecord> records = std::move(dead_letters_);
  for (PendingReply& pending : replies_) {
    if (pending.reply.code() == 0) {
      const WorkingAggregate& record = working_.at(pending.reply.aggregate_id());
      if (const HandledCommand* handled = record.FindHandled(pending.reply.command_id())) {
        pending.reply.set_aggregate_version(handled->version);
        pending.reply.set_last_event_offset(handled->last_event_offset);
      }
    }
    records.push_back({settings_.topics.replies, pending.partition, pending.key,
                       pending.reply.SerializeAsString(), {}});
  }
  return records;
}

void PartitionBatch::RecordOffsets(const std::vector<int64_t>& event_offsets) {
  for (size_t i = 0; i < event_sources_.size() && i < event_offsets.size(); ++i) {
    const auto& [aggregate_id, command_id] = event_sources_[i];
    WorkingAggregate& record = working_.at(aggregate_id);
    record.last_event_offset = event_offsets[i];
    record.new_handled[command_id].last_event_offset = event_offsets[i];
    events_next_offset_ = event_offsets[i] + 1;
  }
}

void PartitionBatch::Commit(std::set<std::string>& changed) {
  state_.DropSpares();
  for (auto& [id, record] : working_) {
    changed.insert(id);
    state_.Commit(id, std::move(record));
  }
  working_.clear();
}

}  // namespace helpline::es
