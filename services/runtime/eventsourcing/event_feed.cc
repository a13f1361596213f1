#include "services/runtime/eventsourcing/event_feed.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/eventsourcing/record_headers.h"
#include "services/runtime/server/log.h"

namespace helpline::es {

EventFeed::EventFeed(kafka::SharedClients& kafka, EventFeedOptions options,
                     std::function<std::unique_ptr<google::protobuf::Message>()> new_event,
                     Projection& projection)
    : kafka_(kafka),
      options_(std::move(options)),
      new_event_(std::move(new_event)),
      projection_(projection) {}

EventFeed::~EventFeed() { Stop(); }

absl::Status EventFeed::Start() {
  if (options_.metrics != nullptr) options_.metrics->AddReader(options_.name);
  kafka::Consumer& reader = kafka_.reader->consumer();
  absl::StatusOr<int> partitions = reader.PartitionCount(options_.topic, absl::Seconds(30));
  if (!partitions.ok()) return partitions.status();
  std::vector<kafka::TopicPartitionOffset> assignment;
  {
    absl::MutexLock lock(&mutex_);
    start_ends_.assign(*partitions, 0);
    positions_.assign(*partitions, 0);
    last_applied_written_.assign(*partitions, std::nullopt);
    lags_.assign(*partitions, PartitionLag(absl::Now()));
    for (int p = 0; p < *partitions; ++p) {
      absl::StatusOr<std::pair<int64_t, int64_t>> watermarks =
          reader.WatermarkOffsets(options_.topic, p, absl::Seconds(30));
      if (!watermarks.ok()) return watermarks.status();
      start_ends_[p] = watermarks->second;
      positions_[p] = watermarks->first;
      assignment.push_back({options_.topic, p, kafka::kOffsetBeginning});
    }
  }
  absl::StatusOr<std::unique_ptr<kafka::Follower>> follower = kafka_.reader->Follow(assignment);
  if (!follower.ok()) return follower.status();
  follower_ = *std::move(follower);
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void EventFeed::Stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  follower_.reset();
}

void EventFeed::Run() {
  std::unique_ptr<google::protobuf::Message> event = new_event_();
  // An event's EventMeta (field 1 "meta"), if its type has one.
  const google::protobuf::FieldDescriptor* meta_field = event->GetDescriptor()->FindFieldByNumber(1);
  if (meta_field != nullptr &&
      (meta_field->message_type() == nullptr ||
       meta_field->message_type() != runtime::v1::EventMeta::descriptor())) {
    meta_field = nullptr;
  }
  absl::Time last_positions = absl::InfinitePast();
  while (!stopping_.load()) {
    absl::StatusOr<std::optional<kafka::Record>> record = follower_->Poll(absl::Milliseconds(20));
    if (!record.ok()) {
      log::Warn("event feed", {{"feed", options_.name}, {"error", record.status().ToString()}});
    } else if (record->has_value()) {
      const kafka::Record& r = **record;
      event->Clear();
      int64_t version = 0;
      if (event->ParseFromString(r.value)) {
        absl::Duration backoff = absl::Milliseconds(50);
        for (absl::Status ready = options_.before_apply ? options_.before_apply(*event)
                                                        : absl::OkStatus();
             !ready.ok(); ready = options_.before_apply(*event)) {
          log::Warn("an event is not ready to apply; trying again",
                    {{"feed", options_.name}, {"offset", r.offset}, {"error", ready.ToString()}});
          absl::SleepFor(backoff);
          backoff = std::min(backoff * 2, absl::Seconds(1));
          if (stopping_.load()) return;
          event->Clear();
          event->ParseFromString(r.value);
        }
        projection_.Apply(*event, EventSource{r.key, r.value.empty()});
        if (meta_field != nullptr) {
          version = static_cast<const runtime::v1::EventMeta&>(
                        event->GetReflection()->GetMessage(*event, meta_field))
                        .aggregate_version();
        }
      } else {
        log::Error("undecodable event sent to the dead-letter topic",
                   {{"feed", options_.name}, {"partition", r.partition}, {"offset", r.offset}});
        kafka_.producer->Produce(DeadLetter(options_.deadletter_topic, r,
                                          absl::StrCat("not a ", event->GetDescriptor()->full_name()),
                                          options_.name),
                               [](const kafka::Delivery&) {}).IgnoreError();
        if (options_.metrics != nullptr && r.offset >= StartEnd(r.partition)) {
          options_.metrics->CountDeadLetter(options_.name, "undecodable");
        }
      }
      absl::MutexLock lock(&mutex_);
      if (r.offset + 1 > positions_[r.partition]) positions_[r.partition] = r.offset + 1;
      last_applied_written_[r.partition] = r.timestamp;
      if (version > 0) {
        int64_t& applied = versions_[r.key];
        applied = std::max(applied, version);
      }
    }
    // Positions move past transaction markers only as the consumer reports
    // them; ask for them when idle and now and then while busy.
    if (!record.ok() || !record->has_value() || absl::Now() - last_positions > absl::Milliseconds(50)) {
      UpdatePositions();
      last_positions = absl::Now();
    }
  }
}

void EventFeed::ReportLag() {
  if (options_.metrics == nullptr || follower_ == nullptr) return;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mutex_);
  for (size_t p = 0; p < positions_.size(); ++p) {
    const auto partition = static_cast<int32_t>(p);
    std::optional<int64_t> end = follower_->consumer().CachedHighWatermark(options_.topic, partition);
    if (!end) continue;
    options_.metrics->SetLag(options_.name, options_.topic, partition,
                             lags_[p].Update(positions_[p], *end, last_applied_written_[p], now));
  }
}

int64_t EventFeed::StartEnd(int32_t partition) {
  absl::MutexLock lock(&mutex_);
  return start_ends_[partition];
}

void EventFeed::UpdatePositions() {
  absl::MutexLock lock(&mutex_);
  for (size_t p = 0; p < positions_.size(); ++p) {
    absl::StatusOr<int64_t> position = follower_->Position(options_.topic, static_cast<int32_t>(p));
    if (position.ok() && *position > positions_[p]) positions_[p] = *position;
  }
}

bool EventFeed::CaughtUp() {
  absl::MutexLock lock(&mutex_);
  if (positions_.empty()) return false;
  for (size_t p = 0; p < positions_.size(); ++p) {
    if (positions_[p] < start_ends_[p]) return false;
  }
  return true;
}

absl::Status EventFeed::WaitUntilCurrent(absl::Time deadline) {
  size_t partitions;
  {
    absl::MutexLock lock(&mutex_);
    partitions = positions_.size();
  }
  if (partitions == 0) {
    return absl::UnavailableError(absl::StrCat("the ", options_.name, " feed has not started"));
  }
  absl::StatusOr<std::vector<int64_t>> ends = kafka_.reader->consumer().EndOffsets(
      options_.topic, static_cast<int>(partitions),
      std::max(absl::Milliseconds(100), deadline - absl::Now()));
  if (!ends.ok()) return ends.status();
  for (size_t p = 0; p < ends->size(); ++p) {
    if ((*ends)[p] <= 0) continue;
    if (absl::Status s = WaitForOffset(static_cast<int32_t>(p), (*ends)[p] - 1, deadline); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status EventFeed::WaitForVersion(const std::string& aggregate_id, int64_t version,
                                       absl::Time deadline) {
  absl::MutexLock lock(&mutex_);
  auto applied = [this, &aggregate_id, version]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    auto found = versions_.find(aggregate_id);
    return found != versions_.end() && found->second >= version;
  };
  if (!mutex_.AwaitWithDeadline(absl::Condition(&applied), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat("the read model has not yet applied version ",
                                                    version, " of ", aggregate_id));
  }
  return absl::OkStatus();
}

absl::Status EventFeed::WaitForOffset(int32_t partition, int64_t offset, absl::Time deadline) {
  absl::MutexLock lock(&mutex_);
  if (partition < 0 || partition >= static_cast<int32_t>(positions_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no partition ", partition, " in ", options_.topic));
  }
  auto applied = [this, partition, offset]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return positions_[partition] > offset;
  };
  if (!mutex_.AwaitWithDeadline(absl::Condition(&applied), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "the read model has not yet applied ", options_.topic, "/", partition, "@", offset));
  }
  return absl::OkStatus();
}

bool AwaitCurrent(EventFeed& feed, const std::function<bool()>& stopping, const std::string& what) {
  absl::Time started = absl::Now();
  absl::Time warned = started;
  while (!feed.WaitUntilCurrent(absl::Now() + absl::Seconds(1)).ok()) {
    if (stopping()) return false;
    if (absl::Now() - warned > absl::Seconds(30)) {
      log::Warn("waiting for a read model to catch up before reacting",
                {{"read_model", what}, {"waited", absl::FormatDuration(absl::Now() - started)}});
      warned = absl::Now();
    }
  }
  return true;
}

}  // namespace helpline::es
