#include "tools/replay/replay.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/eventsourcing/command_batch.h"
#include "services/runtime/eventsourcing/partition_state.h"

namespace helpline::replay {
namespace {

using google::protobuf::Message;

constexpr size_t kMaxTimersPerDecision = 1000;  // the processor's max_batch_commands

std::string Shown(const Message* message) {
  if (message == nullptr) return "";
  std::string text = message->ShortDebugString();
  if (text.size() > 2000) text = absl::StrCat(text.substr(0, 2000), " …");
  return text;
}

// One recorded event, decoded.
struct Recorded {
  const kafka::Record* record = nullptr;
  std::unique_ptr<Message> event;  // null: the bytes do not decode
  runtime::v1::EventMeta meta;
};

class PartitionReplay {
 public:
  PartitionReplay(const RecordedLog& log, int32_t partition, ReplayReport& report)
      : log_(log),
        partition_(partition),
        report_(report),
        settings_{.type = log.type,
                  .service = log.service,
                  .topics = es::ServiceTopics::For(log.service),
                  .log_dead_letters = false},
        state_(*log.type, log.dedupe_window) {
    auto found = log.events.find(partition);
    if (found == log.events.end()) return;
    for (const kafka::Record& record : found->second) {
      Recorded each;
      each.record = &record;
      each.event = log.type->NewEvent();
      if (each.event->ParseFromString(record.value)) {
        each.meta = *log.type->MutableEventMeta(*each.event);
      } else {
        each.event.reset();
      }
      const bool starts_decision = recorded_.empty() ||
                                   recorded_.back().meta.command_id() != each.meta.command_id() ||
                                   recorded_.back().meta.aggregate_id() != each.meta.aggregate_id();
      if (starts_decision) decision_starts_[each.meta.command_id()].push_back(recorded_.size());
      recorded_.push_back(std::move(each));
    }
    auto commands = log.commands.find(partition);
    if (commands == log.commands.end()) return;
    std::unique_ptr<Message> parsed = log.type->NewCommand();
    for (const kafka::Record& command : commands->second) {
      if (parsed->ParseFromString(command.value)) {
        held_.try_emplace(log.type->MutableCommandMeta(*parsed)->command_id(), command.timestamp);
      }
    }
  }

  void Run() {
    auto commands = log_.commands.find(partition_);
    if (commands != log_.commands.end()) {
      for (const kafka::Record& command : commands->second) {
        if (!DecideAgain(command)) return;
      }
    }
    CatchUpTo(recorded_.size());
  }

 private:
  absl::Time TimeOf(size_t index) const { return FromProtoTime(recorded_[index].meta.occurred_at()); }

  bool IsTimer(const Recorded& recorded) const {
    return recorded.meta.actor().system() == absl::StrCat(log_.service, ".timer");
  }

  // Its command is in the log: written before these events were (a later
  // record of the same id is a retry, answered from them).
  bool IsHeld(const Recorded& recorded) const {
    if (recorded.event == nullptr) return false;
    auto found = held_.find(recorded.meta.command_id());
    return found != held_.end() && found->second <= recorded.record->timestamp;
  }

  // Where the record has the events of this command: the index of its first
  // not yet passed, or npos. Not when another held command's events come
  // first: those are of a retry decided later (this time it left none).
  size_t RecordedDecision(const std::string& command_id) {
    auto found = decision_starts_.find(command_id);
    if (found == decision_starts_.end()) return std::string::npos;
    std::deque<size_t>& starts = found->second;
    while (!starts.empty() && starts.front() < cursor_) starts.pop_front();
    if (starts.empty()) return std::string::npos;
    const size_t start = starts.front();
    for (size_t i = cursor_; i < start; ++i) {
      if (IsHeld(recorded_[i]) && recorded_[i].meta.command_id() != command_id) {
        return std::string::npos;
      }
    }
    starts.pop_front();
    return start;
  }

  bool DecideAgain(const kafka::Record& command) {
    std::unique_ptr<Message> parsed = log_.type->NewCommand();
    std::string command_id;
    if (parsed->ParseFromString(command.value)) {
      command_id = log_.type->MutableCommandMeta(*parsed)->command_id();
    }
    const size_t decision = command_id.empty() ? std::string::npos : RecordedDecision(command_id);
    absl::Time now;
    if (decision != std::string::npos) {
      if (!CatchUpTo(decision)) return false;
      now = TimeOf(decision);
    } else {
      // Refused, a retry, or a no-op. The events of commands no longer held
      // came before it; it was decided in a batch at or before the next
      // decision recorded, which is as close as the record tells (a
      // batch's commands are decided before its timers fire).
      if (!CatchUpTo(recorded_.size(), /*only_unheld=*/true)) return false;
      now = cursor_ < recorded_.size() && recorded_[cursor_].event != nullptr
                ? std::max(last_time_, TimeOf(cursor_))
                : last_time_;
      if (now == absl::InfinitePast()) now = command.timestamp;
    }
    es::PartitionBatch batch(settings_, partition_, state_);
    batch.Decide(command, now);
    ++report_.commands;
    size_t expected = 0;
    if (decision != std::string::npos) {
      for (size_t i = decision; i < recorded_.size() &&
                                recorded_[i].meta.command_id() == command_id &&
                                recorded_[i].meta.aggregate_id() == recorded_[decision].meta.aggregate_id();
           ++i) {
        ++expected;
      }
    }
    return Check(batch, now, expected, command.key, command_id);
  }

  // Passes the recorded decisions before `limit` (only those of commands
  // no longer held, when `only_unheld`):
  // timers are fired again and checked; events of commands no longer held
  // are applied as recorded.
  bool CatchUpTo(size_t limit, bool only_unheld = false) {
    while (cursor_ < limit) {
      const Recorded& next = recorded_[cursor_];
      if (only_unheld && (next.event == nullptr || IsTimer(next) || IsHeld(next))) break;
      if (next.event != nullptr && IsTimer(next)) {
        const absl::Time now = TimeOf(cursor_);
        es::PartitionBatch batch(settings_, partition_, state_);
        batch.FireDueTimers(now, kMaxTimersPerDecision);
        ++report_.timers;
        // Every timer due then fired in that one batch, one after another.
        size_t expected = 0;
        for (size_t i = cursor_; i < recorded_.size() && recorded_[i].event != nullptr &&
                                 IsTimer(recorded_[i]) && TimeOf(i) == now;
             ++i) {
          ++expected;
        }
        if (!Check(batch, now, expected, next.meta.aggregate_id(), next.meta.command_id())) {
          return false;
        }
        continue;
      }
      if (next.event == nullptr) {
        Diverge(cursor_, "the recorded event does not decode as this service's event", nullptr,
                next.meta.aggregate_id(), "");
        return false;
      }
      state_.ApplyCommitted(next.record->key, *next.event, next.record->offset);
      ++report_.events_applied_unchecked;
      last_time_ = std::max(last_time_, TimeOf(cursor_));
      ++cursor_;
    }
    return true;
  }

  // The batch's events against the `expected` recorded ones from the cursor.
  bool Check(es::PartitionBatch& batch, absl::Time now, size_t expected,
             const std::string& aggregate_id, const std::string& command_id) {
    const std::vector<kafka::OutgoingRecord>& produced = batch.events();
    for (size_t i = 0; i < std::max(produced.size(), expected); ++i) {
      std::unique_ptr<Message> replayed;
      if (i < produced.size()) {
        replayed = log_.type->NewEvent();
        replayed->ParseFromString(produced[i].value);
      }
      if (i >= expected) {
        Diverge(std::string::npos,
                absl::StrCat("re-deciding wrote ", produced.size(), " events where the record has ",
                             expected),
                replayed.get(), produced[i].key, command_id);
        return false;
      }
      const Recorded& recorded = recorded_[cursor_ + i];
      if (replayed == nullptr) {
        Diverge(cursor_ + i,
                absl::StrCat("re-deciding wrote ", produced.size(), " events where the record has ",
                             expected),
                nullptr, aggregate_id, command_id);
        return false;
      }
      if (produced[i].value == recorded.record->value && produced[i].key == recorded.record->key) {
        continue;
      }
      if (log_.ignore_event_ids && recorded.event != nullptr) {
        log_.type->MutableEventMeta(*replayed)->set_event_id(recorded.meta.event_id());
      }
      google::protobuf::util::MessageDifferencer differ;
      std::string differences;
      differ.ReportDifferencesToString(&differences);
      if (recorded.event == nullptr || !differ.Compare(*recorded.event, *replayed) ||
          produced[i].key != recorded.record->key) {
        Diverge(cursor_ + i,
                differences.empty() ? absl::StrCat("key ", produced[i].key, " instead of ",
                                                   recorded.record->key)
                                    : differences,
                replayed.get(), produced[i].key, command_id);
        return false;
      }
    }
    std::vector<int64_t> offsets;
    for (size_t i = 0; i < produced.size(); ++i) offsets.push_back(recorded_[cursor_ + i].record->offset);
    batch.RecordOffsets(offsets);
    std::set<std::string> changed;
    batch.Commit(changed);
    report_.events_reproduced += static_cast<int64_t>(produced.size());
    cursor_ += produced.size();
    last_time_ = std::max(last_time_, now);
    return true;
  }

  void Diverge(size_t index, std::string what, const Message* replayed,
               const std::string& aggregate_id, const std::string& command_id) {
    Divergence divergence;
    divergence.partition = partition_;
    divergence.aggregate_id = aggregate_id;
    divergence.command_id = command_id;
    divergence.what = std::move(what);
    divergence.replayed = Shown(replayed);
    if (index != std::string::npos && index < recorded_.size()) {
      divergence.offset = recorded_[index].record->offset;
      divergence.recorded = Shown(recorded_[index].event.get());
      if (divergence.aggregate_id.empty()) divergence.aggregate_id = recorded_[index].record->key;
    }
    report_.divergences.push_back(std::move(divergence));
  }

  const RecordedLog& log_;
  const int32_t partition_;
  ReplayReport& report_;
  const es::BatchSettings settings_;
  es::PartitionState state_;
  std::vector<Recorded> recorded_;
  // Command id -> the indexes in recorded_ where its decisions start.
  absl::flat_hash_map<std::string, std::deque<size_t>> decision_starts_;
  // The commands the log holds: id -> when its first record was written.
  absl::flat_hash_map<std::string, absl::Time> held_;
  size_t cursor_ = 0;  // recorded_ before it are passed
  absl::Time last_time_ = absl::InfinitePast();
};

}  // namespace

ReplayReport Replay(const RecordedLog& log) {
  ReplayReport report;
  report.service = log.service;
  const absl::Time started = absl::Now();
  std::set<int32_t> partitions;
  for (const auto& [partition, records] : log.commands) partitions.insert(partition);
  for (const auto& [partition, records] : log.events) partitions.insert(partition);
  for (int32_t partition : partitions) PartitionReplay(log, partition, report).Run();
  report.took = absl::Now() - started;
  return report;
}

}  // namespace helpline::replay
