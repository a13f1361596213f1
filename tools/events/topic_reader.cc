#include "tools/events/topic_reader.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/kafka/rdkafka_consumer.h"

namespace helpline::events {

absl::Status ReadTopic(const kafka::ClientConfig& client, const std::string& topic,
                       const std::function<void(kafka::Record&)>& visit,
                       const TopicReading& reading) {
  kafka::ConsumerOptions options;
  // Commits nothing; the prefix is the one analysts' principal may use
  // (deploy/topics.json), so helpline-sponsors and helpline-whatif run as them.
  options.group_id = absl::StrCat("helpline-events-", ids::NewUuidV7());
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaConsumer>> consumer =
      kafka::RdKafkaConsumer::Create(client, options);
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<int> partitions = (*consumer)->PartitionCount(topic, absl::Seconds(30));
  if (!partitions.ok()) return partitions.status();
  std::vector<kafka::TopicPartitionOffset> assignment;
  std::map<int32_t, int64_t> open;  // partitions not read to their end yet
  for (int32_t partition = 0; partition < *partitions; ++partition) {
    absl::StatusOr<std::pair<int64_t, int64_t>> marks =
        (*consumer)->WatermarkOffsets(topic, partition, absl::Seconds(30));
    if (!marks.ok()) return marks.status();
    auto given = reading.ends.find(partition);
    const int64_t end =
        given == reading.ends.end() ? marks->second : std::min(given->second, marks->second);
    if (marks->first < end) open[partition] = end;
    if (marks->first < end || reading.follow) assignment.push_back({topic, partition, marks->first});
  }
  const bool limited = !reading.follow;
  bool told = false;
  auto tell_caught_up = [&] {
    if (!told && open.empty() && reading.caught_up) reading.caught_up();
    told = told || open.empty();
  };
  tell_caught_up();
  if (assignment.empty()) return absl::OkStatus();
  if (absl::Status assigned = (*consumer)->Assign(assignment); !assigned.ok()) return assigned;
  absl::Time next_check = absl::Now();
  while (limited ? !open.empty() : !(reading.stop != nullptr && reading.stop->load())) {
    absl::StatusOr<std::optional<kafka::Record>> polled = (*consumer)->Poll(absl::Milliseconds(200));
    if (!polled.ok()) return polled.status();
    if (polled->has_value()) {
      kafka::Record& record = **polled;
      auto end = open.find(record.partition);
      const bool within = end != open.end() && record.offset < end->second;
      if (within || !limited) visit(record);
      if (within && record.offset + 1 >= end->second) open.erase(end);
    }
    if (reading.tick) reading.tick();
    if (polled->has_value() && absl::Now() < next_check) continue;
    // A partition whose end is a transaction marker is passed only by its position.
    next_check = absl::Now() + absl::Milliseconds(100);
    for (auto it = open.begin(); it != open.end();) {
      absl::StatusOr<int64_t> position = (*consumer)->Position(topic, it->first);
      it = position.ok() && *position >= it->second ? open.erase(it) : std::next(it);
    }
    tell_caught_up();
  }
  tell_caught_up();
  return absl::OkStatus();
}

}  // namespace helpline::events
