#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "services/runtime/kafka/client.h"

namespace helpline::events {

struct TopicReading {
  // Where each partition's reading stops (missing: the end the broker
  // reports when reading starts; for read_committed, the last stable offset).
  std::map<int32_t, int64_t> ends;
  // Past the ends, keep reading what comes until `stop` is set; `caught_up`
  // is called once, when the ends are passed.
  bool follow = false;
  std::function<void()> caught_up;
  const std::atomic<bool>* stop = nullptr;
  // Called after every poll, records or not (about 5 times a second).
  std::function<void()> tick;
};

// Reads every partition of `topic` from its first record (committed
// records only), handing each record to `visit` in order per partition.
absl::Status ReadTopic(const kafka::ClientConfig& client, const std::string& topic,
                       const std::function<void(kafka::Record&)>& visit,
                       const TopicReading& reading = {});

}  // namespace helpline::events
