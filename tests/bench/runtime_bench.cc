// helpline-runtime-bench: the event-sourcing runtime's own figures, driven by
// tools/bench (which also runs Kafka's perf tools as the baselines).
//
//   helpline-runtime-bench commands --bootstrap-servers H:P [--partitions 12]
//       [--seconds 10] [--in-flight 2000] [--padding 100]
//     Full command path (front -> commands topic -> processor transaction ->
//     reply) as fast as it goes, then at half that rate. Prints one JSON line:
//     {"commands_per_sec", "record_bytes", "half_rate", "p50_ms", "p99_ms"}.
//   helpline-runtime-bench replay --bootstrap-servers H:P [--partitions 12]
//       [--events 1000000] [--aggregates 10000]
//     Writes that many counter events (once per topic), then times a
//     processor rebuilding its state from them. Prints
//     {"events", "seconds", "events_per_sec", "topic"}.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/ids.h"
#include "services/runtime/eventsourcing/command_sender.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"
#include "services/runtime/kafka/admin.h"
#include "services/runtime/kafka/producer.h"
#include "services/runtime/kafka/topics.h"
#include "tests/bench/command_load.h"

namespace helpline::bench {
namespace {

using es::testing::CounterDomain;

struct Flags {
  std::string mode;
  kafka::ClientConfig client;
  int partitions = 12;
  double seconds = 10;
  int in_flight = 2000;
  int padding = 100;
  int64_t events = 1000000;
  int aggregates = 10000;
  int64_t snapshot_every = 10000;
  double batch_wait_ms = 2;
  std::string prefix;
};

int Fail(const std::string& message) {
  std::cerr << "helpline-runtime-bench: " << message << "\n";
  return 1;
}

absl::Status CreateTopics(const Flags& flags) {
  return CreateServiceTopics(flags.client, "counter", flags.prefix, flags.partitions);
}

es::ProcessorOptions ProcessorFor(const Flags& flags) {
  es::ProcessorOptions options;
  options.service = flags.prefix + "counter";
  options.topics = es::ServiceTopics::For("counter", flags.prefix);
  options.snapshots.every_events = flags.snapshot_every;
  options.max_batch_wait = absl::Microseconds(flags.batch_wait_ms * 1000);
  return options;
}

bool WaitReady(es::Processor& processor, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!processor.Ready()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}


void SendOne(es::CommandSender& sender, Recorder& recorder, int64_t n, const Flags& flags,
             const std::string& padding) {
  auto command = std::make_shared<CounterDomain::Command>();
  command->mutable_meta()->set_aggregate_id(absl::StrCat("bench-", n % flags.aggregates));
  command->mutable_meta()->set_command_id(ids::NewUuidV7());
  command->mutable_increment()->set_by(1);
  command->mutable_increment()->set_padding(padding);
  absl::Time started = absl::Now();
  sender.SendAsync(*command, *command->mutable_meta(), started + absl::Seconds(30),
                   [&recorder, started, command](absl::StatusOr<runtime::v1::Reply> reply) {
                     recorder.Done(absl::Now() - started, reply.ok() && reply->code() == 0);
                   });
}

int Commands(const Flags& flags) {
  if (absl::Status s = CreateTopics(flags); !s.ok()) return Fail(s.ToString());
  SystemClock clock;
  es::Processor processor(flags.client, ProcessorFor(flags), es::testing::CounterType(), clock,
                          nullptr);
  if (absl::Status s = processor.Start(); !s.ok()) return Fail(s.ToString());
  if (!WaitReady(processor, absl::Seconds(120))) return Fail("processor not ready");
  auto kafka = kafka::SharedClients::Create(flags.client);
  if (!kafka.ok()) return Fail(kafka.status().ToString());
  auto sender = es::CommandSender::Create(**kafka, {ProcessorFor(flags).topics, ""});
  if (!sender.ok()) return Fail(sender.status().ToString());
  std::string padding(flags.padding, 'x');
  CounterDomain::Command sample;
  sample.mutable_meta()->set_aggregate_id("bench-1234");
  sample.mutable_meta()->set_command_id(ids::NewUuidV7());
  sample.mutable_meta()->set_reply_to((*sender)->instance_id());
  sample.mutable_increment()->set_by(1);
  sample.mutable_increment()->set_padding(padding);
  *sample.mutable_meta()->mutable_sent_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  *sample.mutable_meta()->mutable_deadline() = google::protobuf::util::TimeUtil::GetCurrentTime();

  int64_t n = 0;
  // Warm-up, then as fast as it goes with a bounded number in flight.
  for (int phase = 0; phase < 2; ++phase) {
    Recorder recorder;
    absl::Time end = absl::Now() + (phase == 0 ? absl::Seconds(2) : absl::Seconds(flags.seconds));
    absl::Time started = absl::Now();
    while (absl::Now() < end) {
      recorder.WaitBelow(flags.in_flight);
      SendOne(**sender, recorder, n++, flags, padding);
    }
    recorder.Drain();
    if (phase == 0) continue;
    double rate = recorder.completed() / absl::ToDoubleSeconds(absl::Now() - started);
    // The same path at half that rate, paced, for its latency.
    Recorder paced;
    double half = rate / 2;
    absl::Time begin = absl::Now();
    absl::Time stop = begin + absl::Seconds(flags.seconds);
    int64_t sent = 0;
    while (absl::Now() < stop) {
      int64_t due = static_cast<int64_t>(absl::ToDoubleSeconds(absl::Now() - begin) * half);
      while (sent < due) {
        paced.WaitBelow(1 << 30);
        SendOne(**sender, paced, n++, flags, padding);
        ++sent;
      }
      absl::SleepFor(absl::Microseconds(200));
    }
    paced.Drain();
    std::cout << nlohmann::json{{"commands_per_sec", rate},
                                {"record_bytes", sample.ByteSizeLong()},
                                {"failures", recorder.failures() + paced.failures()},
                                {"half_rate", half},
                                {"p50_ms", paced.Percentile(0.50)},
                                {"p99_ms", paced.Percentile(0.99)},
                                {"max_rate_p50_ms", recorder.Percentile(0.50)},
                                {"max_rate_p99_ms", recorder.Percentile(0.99)}}
                     .dump()
              << std::endl;
  }
  sender->reset();
  processor.Stop();
  return 0;
}

int Replay(const Flags& flags) {
  if (absl::Status s = CreateTopics(flags); !s.ok()) return Fail(s.ToString());
  es::ProcessorOptions options = ProcessorFor(flags);
  options.snapshots.every_events = int64_t{1} << 40;  // time the events, not snapshots
  options.snapshots.interval = absl::Hours(24);
  absl::StatusOr<std::unique_ptr<kafka::Admin>> admin = kafka::Admin::Create(flags.client);
  if (!admin.ok()) return Fail(admin.status().ToString());

  // Write the events once; the topic name carries the count.
  auto consumer = kafka::Consumer::Create(flags.client, kafka::ConsumerOptions{});
  if (!consumer.ok()) return Fail(consumer.status().ToString());
  int64_t present = 0;
  for (int p = 0; p < flags.partitions; ++p) {
    auto watermarks = (*consumer)->WatermarkOffsets(options.topics.events, p, absl::Seconds(10));
    if (!watermarks.ok()) return Fail(watermarks.status().ToString());
    present += watermarks->second;
  }
  if (present < flags.events) {
    kafka::ProducerOptions producer_options;
    producer_options.linger = absl::Milliseconds(20);
    producer_options.overrides = {{"batch.num.messages", "10000"}, {"compression.type", "none"}};
    auto producer = kafka::Producer::Create(flags.client, producer_options);
    if (!producer.ok()) return Fail(producer.status().ToString());
    std::vector<int64_t> versions(flags.aggregates, 0);
    std::atomic<int64_t> failed{0};
    for (int64_t i = 0; i < flags.events; ++i) {
      int aggregate = static_cast<int>(i % flags.aggregates);
      CounterDomain::Event event;
      event.mutable_meta()->set_event_id(ids::NewUuidV7());
      event.mutable_meta()->set_aggregate_id(absl::StrCat("replay-", aggregate));
      event.mutable_meta()->set_aggregate_version(++versions[aggregate]);
      event.mutable_meta()->set_command_id(ids::NewUuidV7());
      *event.mutable_meta()->mutable_occurred_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
      event.mutable_incremented()->set_by(1);
      event.mutable_incremented()->set_total(versions[aggregate]);
      kafka::OutgoingRecord record{options.topics.events, std::nullopt,
                                   event.meta().aggregate_id(), event.SerializeAsString(), {}};
      if (!(*producer)->Produce(record, [&failed](const kafka::Delivery& d) {
            if (!d.status.ok()) ++failed;
          }).ok()) {
        return Fail("cannot queue events");
      }
    }
    if (!(*producer)->Flush(absl::Minutes(5)).ok() || failed.load() > 0) {
      return Fail("events were not all written");
    }
  }

  SystemClock clock;
  absl::Time started = absl::Now();
  es::Processor processor(flags.client, options, es::testing::CounterType(), clock, nullptr);
  if (absl::Status s = processor.Start(); !s.ok()) return Fail(s.ToString());
  if (!WaitReady(processor, absl::Minutes(10))) return Fail("rebuild did not finish");
  double seconds = absl::ToDoubleSeconds(absl::Now() - started);
  processor.Stop();
  std::cout << nlohmann::json{{"events", flags.events},
                              {"seconds", seconds},
                              {"events_per_sec", flags.events / seconds},
                              {"topic", options.topics.events}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace helpline::bench

int main(int argc, char** argv) {
  helpline::bench::Flags flags;
  if (argc < 2) return helpline::bench::Fail("usage: commands|replay --bootstrap-servers H:P ...");
  flags.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--bootstrap-servers") flags.client.bootstrap_servers = value;
    else if (flag == "--partitions") ok = absl::SimpleAtoi(value, &flags.partitions);
    else if (flag == "--seconds") ok = absl::SimpleAtod(value, &flags.seconds);
    else if (flag == "--in-flight") ok = absl::SimpleAtoi(value, &flags.in_flight);
    else if (flag == "--padding") ok = absl::SimpleAtoi(value, &flags.padding);
    else if (flag == "--events") ok = absl::SimpleAtoi(value, &flags.events);
    else if (flag == "--aggregates") ok = absl::SimpleAtoi(value, &flags.aggregates);
    else if (flag == "--snapshot-every") ok = absl::SimpleAtoi(value, &flags.snapshot_every);
    else if (flag == "--batch-wait-ms") ok = absl::SimpleAtod(value, &flags.batch_wait_ms);
    else if (flag == "--prefix") flags.prefix = value;
    else return helpline::bench::Fail("unknown flag " + flag);
    if (!ok) return helpline::bench::Fail("bad value for " + flag);
  }
  if (flags.prefix.empty()) {
    flags.prefix = flags.mode == "replay"
                       ? absl::StrCat("bench-replay-", flags.events, "-", flags.partitions, ".")
                       : absl::StrCat("bench-", helpline::ids::NewUuidV7().substr(0, 13), ".");
  }
  if (flags.mode == "commands") return helpline::bench::Commands(flags);
  if (flags.mode == "replay") return helpline::bench::Replay(flags);
  return helpline::bench::Fail("unknown mode " + flags.mode);
}
