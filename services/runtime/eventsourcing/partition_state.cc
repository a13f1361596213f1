#include "services/runtime/eventsourcing/partition_state.h"

#include <openssl/evp.h>

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"

namespace helpline::es {
namespace {

using google::protobuf::util::TimeUtil;

// Past this many remembered commands an aggregate forgets those older than
// the dedupe window (counted from its newest event, so replay agrees).
constexpr size_t kPruneAbove = 32;

absl::Time ToTime(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

}  // namespace

AggregateRecord AggregateRecord::Clone() const {
  AggregateRecord copy;
  copy.state.reset(state->New());
  copy.state->CopyFrom(*state);
  copy.version = version;
  copy.last_event_offset = last_event_offset;
  copy.handled_commands = handled_commands;
  copy.timer_suppressed_at_version = timer_suppressed_at_version;
  return copy;
}

void ApplyEvent(const AggregateType& type, const google::protobuf::Message& event, int64_t offset,
                absl::Duration dedupe_window, AggregateRecord& record) {
  type.Apply(*record.state, event);
  const runtime::v1::EventMeta& meta =
      *type.MutableEventMeta(const_cast<google::protobuf::Message&>(event));
  record.version = meta.aggregate_version();
  record.last_event_offset = offset;
  if (!meta.command_id().empty()) {
    runtime::v1::HandledCommand& handled = record.handled_commands[meta.command_id()];
    handled.set_command_id(meta.command_id());
    handled.set_version(meta.aggregate_version());
    handled.set_last_event_offset(offset);
    *handled.mutable_handled_at() = meta.occurred_at();
  }
  if (record.handled_commands.size() > kPruneAbove) {
    absl::Time horizon = ToTime(meta.occurred_at()) - dedupe_window;
    absl::erase_if(record.handled_commands, [&](const auto& entry) {
      return ToTime(entry.second.handled_at()) < horizon;
    });
  }
}

PartitionState::PartitionState(const AggregateType& type, absl::Duration dedupe_window)
    : type_(type), dedupe_window_(dedupe_window) {}

const AggregateRecord* PartitionState::Find(const std::string& aggregate_id) const {
  auto it = aggregates_.find(aggregate_id);
  return it == aggregates_.end() ? nullptr : &it->second;
}

AggregateRecord& PartitionState::Mutable(const std::string& aggregate_id) {
  AggregateRecord& record = aggregates_[aggregate_id];
  if (record.state == nullptr) record.state = type_.NewState();
  return record;
}

void PartitionState::Put(const std::string& aggregate_id, AggregateRecord record) {
  AggregateRecord& stored = aggregates_[aggregate_id];
  stored = std::move(record);
  RefreshTimer(aggregate_id, stored);
}

void PartitionState::Clear() {
  aggregates_.clear();
  timers_.clear();
  timer_of_.clear();
}

void PartitionState::ApplyCommitted(const std::string& aggregate_id,
                                    const google::protobuf::Message& event, int64_t offset) {
  AggregateRecord& record = Mutable(aggregate_id);
  ApplyEvent(type_, event, offset, dedupe_window_, record);
  RefreshTimer(aggregate_id, record);
}

runtime::v1::AggregateSnapshot PartitionState::ToSnapshot(const std::string& aggregate_id) const {
  runtime::v1::AggregateSnapshot snapshot;
  const AggregateRecord* record = Find(aggregate_id);
  if (record == nullptr) return snapshot;
  snapshot.set_aggregate_id(aggregate_id);
  snapshot.set_version(record->version);
  snapshot.set_state(DeterministicBytes(*record->state));
  snapshot.set_last_event_offset(record->last_event_offset);
  std::vector<const runtime::v1::HandledCommand*> handled;
  for (const auto& [id, command] : record->handled_commands) handled.push_back(&command);
  std::sort(handled.begin(), handled.end(),
            [](auto* a, auto* b) { return a->command_id() < b->command_id(); });
  for (const auto* command : handled) *snapshot.add_handled_commands() = *command;
  return snapshot;
}

void PartitionState::LoadSnapshot(const runtime::v1::AggregateSnapshot& snapshot) {
  AggregateRecord record;
  record.state = type_.NewState();
  record.state->ParseFromString(snapshot.state());
  record.version = snapshot.version();
  record.last_event_offset = snapshot.last_event_offset();
  for (const auto& command : snapshot.handled_commands()) {
    record.handled_commands[command.command_id()] = command;
  }
  Put(snapshot.aggregate_id(), std::move(record));
}

void PartitionState::RefreshTimer(const std::string& aggregate_id, const AggregateRecord& record) {
  auto existing = timer_of_.find(aggregate_id);
  if (existing != timer_of_.end()) {
    timers_.erase({existing->second, aggregate_id});
    timer_of_.erase(existing);
  }
  if (record.timer_suppressed_at_version == record.version) return;
  std::optional<absl::Time> deadline = type_.NextDeadline(*record.state);
  if (!deadline) return;
  timers_.insert({*deadline, aggregate_id});
  timer_of_[aggregate_id] = *deadline;
}

std::vector<std::string> PartitionState::DueTimers(absl::Time now, size_t limit) const {
  std::vector<std::string> due;
  for (const auto& [deadline, aggregate_id] : timers_) {
    if (deadline > now || due.size() >= limit) break;
    due.push_back(aggregate_id);
  }
  return due;
}

std::optional<absl::Time> PartitionState::NextTimer() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first;
}

std::string PartitionState::Digest() const {
  std::vector<std::string> ids;
  for (const auto& [id, record] : aggregates_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha256(), nullptr);
  for (const std::string& id : ids) {
    std::string bytes = DeterministicBytes(ToSnapshot(id));
    uint64_t length = bytes.size();
    EVP_DigestUpdate(context, &length, sizeof length);
    EVP_DigestUpdate(context, bytes.data(), bytes.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(context, digest, &size);
  EVP_MD_CTX_free(context);
  return absl::BytesToHexString(std::string(reinterpret_cast<char*>(digest), size));
}

}  // namespace helpline::es
