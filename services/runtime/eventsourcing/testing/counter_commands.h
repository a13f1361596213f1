#pragma once

#include <atomic>
#include <map>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"
#include "services/runtime/kafka/client.h"

// What the runtime's Kafka tests do with the counter, in one place.
namespace helpline::es::testing {

inline CounterDomain::Command Increment(const std::string& aggregate, int64_t by,
                                        const std::string& command_id = "",
                                        int64_t expected_version = 0) {
  CounterDomain::Command command;
  command.mutable_meta()->set_aggregate_id(aggregate);
  command.mutable_meta()->set_command_id(command_id.empty() ? ids::NewUuidV7() : command_id);
  command.mutable_meta()->set_expected_version(expected_version);
  command.mutable_increment()->set_by(by);
  return command;
}

inline std::vector<CounterDomain::Event> Events(const std::vector<kafka::Record>& records) {
  std::vector<CounterDomain::Event> events;
  for (const kafka::Record& record : records) {
    CounterDomain::Event event;
    EXPECT_TRUE(event.ParseFromString(record.value)) << "offset " << record.offset;
    events.push_back(event);
  }
  return events;
}

// Each aggregate's versions are 1..N without gaps or repeats.
inline void ExpectContiguousVersions(const std::vector<CounterDomain::Event>& events) {
  std::map<std::string, std::vector<int64_t>> versions;
  for (const auto& event : events) {
    versions[event.meta().aggregate_id()].push_back(event.meta().aggregate_version());
  }
  for (const auto& [id, list] : versions) {
    for (size_t i = 0; i < list.size(); ++i) {
      ASSERT_EQ(list[i], static_cast<int64_t>(i + 1)) << "aggregate " << id;
    }
  }
}

// Every acknowledged command has exactly one event, and no event lacks one.
inline void ExpectExactlyOnce(const std::vector<std::string>& acknowledged,
                              const std::vector<CounterDomain::Event>& events) {
  std::map<std::string, int> events_per_command;
  for (const auto& event : events) ++events_per_command[event.meta().command_id()];
  for (const std::string& id : acknowledged) ASSERT_EQ(events_per_command[id], 1) << id;
  EXPECT_EQ(events.size(), acknowledged.size()) << "no event without an acknowledged command";
  ExpectContiguousVersions(events);
}

// Sends until the processor answers, retrying the same command id after a
// deadline or an unavailable broker, as a client would.
inline runtime::v1::Reply SendUntilAnswered(CommandSender& sender,
                                            const CounterDomain::Command& command,
                                            absl::Duration give_up_after = absl::Seconds(120)) {
  absl::Time give_up = absl::Now() + give_up_after;
  for (;;) {
    CounterDomain::Command attempt = command;
    absl::StatusOr<runtime::v1::Reply> reply = sender.Send(attempt, absl::Now() + absl::Seconds(5));
    if (reply.ok()) return *reply;
    if (absl::Now() > give_up) {
      ADD_FAILURE() << "no answer for " << command.meta().command_id() << ": " << reply.status();
      return runtime::v1::Reply();
    }
    if (reply.status().code() != absl::StatusCode::kDeadlineExceeded) {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
}

// Clients that keep sending increments (each until answered) to a handful of
// aggregates until Stop, remembering the commands that were acknowledged.
class IncrementLoad {
 public:
  IncrementLoad(CommandSender& sender, int clients, const std::string& aggregate_prefix,
                int aggregates) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, &sender, c, aggregate_prefix, aggregates] {
        for (int i = 0; !stop_.load(); ++i) {
          CounterDomain::Command command = Increment(
              absl::StrCat(aggregate_prefix, (c * 31 + i) % aggregates), 1,
              ids::CommandId(absl::StrCat(aggregate_prefix, "client-", c), std::to_string(i)));
          runtime::v1::Reply reply = SendUntilAnswered(sender, command);
          ASSERT_EQ(reply.code(), 0) << reply.message();
          absl::MutexLock lock(&mutex_);
          acknowledged_.push_back(command.meta().command_id());
        }
      });
    }
  }
  ~IncrementLoad() { Stop(); }

  // Lets every client finish the command it is on; returns the acknowledged ones.
  std::vector<std::string> Stop() {
    stop_.store(true);
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    absl::MutexLock lock(&mutex_);
    return acknowledged_;
  }
  size_t acknowledged() {
    absl::MutexLock lock(&mutex_);
    return acknowledged_.size();
  }

 private:
  std::atomic<bool> stop_{false};
  absl::Mutex mutex_;
  std::vector<std::string> acknowledged_;
  std::vector<std::thread> threads_;
};

}  // namespace helpline::es::testing
