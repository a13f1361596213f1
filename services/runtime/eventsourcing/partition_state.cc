#include "services/runtime/eventsourcing/partition_state.h"

#include <openssl/evp.h>

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::es {
namespace {

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

const HandledCommand* WorkingAggregate::FindHandled(const std::string& command_id) const {
  auto added = new_handled.find(command_id);
  if (added != new_handled.end()) return &added->second;
  if (committed == nullptr) return nullptr;
  auto found = committed->handled_commands.find(command_id);
  if (found == committed->handled_commands.end() ||
      found->second.handled_at < committed->forget_before) {
    return nullptr;
  }
  return &found->second;
}

void ApplyEvent(const AggregateType& type, const google::protobuf::Message& event, int64_t offset,
                google::protobuf::Message& state, int64_t& version, int64_t& last_event_offset,
                HandledCommands& handled) {
  type.Apply(state, event);
  const runtime::v1::EventMeta& meta =
      *type.MutableEventMeta(const_cast<google::protobuf::Message&>(event));
  version = meta.aggregate_version();
  last_event_offset = offset;
  if (!meta.command_id().empty()) {
    handled[meta.command_id()] = {meta.aggregate_version(), offset, FromProtoTime(meta.occurred_at())};
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

WorkingAggregate PartitionState::Checkout(const std::string& aggregate_id) {
  WorkingAggregate working;
  auto found = aggregates_.find(aggregate_id);
  if (found == aggregates_.end()) {
    working.state = type_.NewState();
    return working;
  }
  working.committed = &found->second;
  if (found->second.spare != nullptr) {
    working.state = std::move(found->second.spare);
  } else {
    working.state.reset(working.committed->state->New());
    working.state->CopyFrom(*working.committed->state);
  }
  working.version = working.committed->version;
  working.last_event_offset = working.committed->last_event_offset;
  working.timer_suppressed_at_version = working.committed->timer_suppressed_at_version;
  return working;
}

void PartitionState::DropSpares() {
  for (const std::string& id : with_spare_) {
    auto found = aggregates_.find(id);
    if (found != aggregates_.end()) found->second.spare.reset();
  }
  with_spare_.clear();
}

void PartitionState::Commit(const std::string& aggregate_id, WorkingAggregate working) {
  AggregateRecord& record = Mutable(aggregate_id);
  std::unique_ptr<google::protobuf::Message> replaced = std::move(record.state);
  record.state = std::move(working.state);
  if (replaced != nullptr) {
    for (const auto& event : working.events) type_.Apply(*replaced, *event);
    record.spare = std::move(replaced);
    with_spare_.push_back(aggregate_id);
  }
  record.version = working.version;
  record.last_event_offset = working.last_event_offset;
  record.timer_suppressed_at_version = working.timer_suppressed_at_version;
  absl::Time oldest_added = absl::InfiniteFuture(), newest_added = absl::InfinitePast();
  for (auto& [id, handled] : working.new_handled) {
    record.handled_commands[id] = handled;
    oldest_added = std::min(oldest_added, handled.handled_at);
    newest_added = std::max(newest_added, handled.handled_at);
  }
  Prune(record, oldest_added, newest_added);
  RefreshTimer(aggregate_id, record);
}

std::vector<std::pair<std::string, HandledCommand>> PartitionState::Retained(
    const AggregateRecord& record) const {
  std::vector<std::pair<std::string, HandledCommand>> kept;
  for (const auto& [id, handled] : record.handled_commands) {
    if (handled.handled_at >= record.forget_before) kept.emplace_back(id, handled);
  }
  std::sort(kept.begin(), kept.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return kept;
}

void PartitionState::Prune(AggregateRecord& record, absl::Time oldest_added,
                           absl::Time newest_added) const {
  record.newest_handled = std::max(record.newest_handled, newest_added);
  record.oldest_handled = std::min(record.oldest_handled, oldest_added);
  record.forget_before = record.newest_handled - dedupe_window_;
  // Only once the oldest command is an eighth of a window past its edge, so
  // that each pass over the commands drops an eighth of a window's worth.
  if (record.oldest_handled >= record.forget_before - dedupe_window_ / 8) return;
  record.oldest_handled = absl::InfiniteFuture();
  for (auto it = record.handled_commands.begin(); it != record.handled_commands.end();) {
    if (it->second.handled_at < record.forget_before) {
      record.handled_commands.erase(it++);
    } else {
      record.oldest_handled = std::min(record.oldest_handled, it->second.handled_at);
      ++it;
    }
  }
}

void PartitionState::Clear() {
  aggregates_.clear();
  with_spare_.clear();
  timers_.clear();
  timer_of_.clear();
}

void PartitionState::ApplyCommitted(const std::string& aggregate_id,
                                    const google::protobuf::Message& event, int64_t offset) {
  AggregateRecord& record = Mutable(aggregate_id);
  // A snapshot record written after the snapshot's offset already has it.
  if (type_.MutableEventMeta(const_cast<google::protobuf::Message&>(event))->aggregate_version() <=
      record.version) {
    return;
  }
  ApplyEvent(type_, event, offset, *record.state, record.version, record.last_event_offset,
             record.handled_commands);
  const runtime::v1::EventMeta& meta =
      *type_.MutableEventMeta(const_cast<google::protobuf::Message&>(event));
  if (!meta.command_id().empty()) {
    absl::Time at = FromProtoTime(meta.occurred_at());
    Prune(record, at, at);
  }
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
  std::vector<std::pair<std::string, HandledCommand>> handled = Retained(*record);
  for (const auto& [id, command] : handled) {
    runtime::v1::HandledCommand* added = snapshot.add_handled_commands();
    added->set_command_id(id);
    added->set_version(command.version);
    added->set_last_event_offset(command.last_event_offset);
    *added->mutable_handled_at() = ToProtoTime(command.handled_at);
  }
  return snapshot;
}

void PartitionState::LoadSnapshot(const runtime::v1::AggregateSnapshot& snapshot) {
  AggregateRecord& record = Mutable(snapshot.aggregate_id());
  record.state->ParseFromString(snapshot.state());
  record.version = snapshot.version();
  record.last_event_offset = snapshot.last_event_offset();
  record.handled_commands.clear();
  record.newest_handled = absl::InfinitePast();
  record.oldest_handled = absl::InfiniteFuture();
  absl::Time oldest_added = absl::InfiniteFuture(), newest_added = absl::InfinitePast();
  for (const auto& command : snapshot.handled_commands()) {
    absl::Time at = FromProtoTime(command.handled_at());
    record.handled_commands[command.command_id()] = {command.version(),
                                                     command.last_event_offset(), at};
    oldest_added = std::min(oldest_added, at);
    newest_added = std::max(newest_added, at);
  }
  Prune(record, oldest_added, newest_added);
  RefreshTimer(snapshot.aggregate_id(), record);
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
