// counter-processor: the runtime's processor for the example counter, as a
// process of its own, so that tests can kill it with -9 and start it again.
//
//   counter-processor --bootstrap-servers H:P --prefix P [--partitions 0,1,2] [--property K=V ...]
//                     [--snapshot-every N] [--replica NAME]
// Prints "ready" once its partitions are rebuilt; stops cleanly on SIGTERM.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/testing/counter_domain.h"
#include "services/runtime/server/server.h"

int main(int argc, char** argv) {
  helpline::server::ShutdownSignal shutdown;
  helpline::kafka::ClientConfig client;
  helpline::es::ProcessorOptions options;
  std::string prefix;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--bootstrap-servers") {
      client.bootstrap_servers = value;
    } else if (flag == "--property" && value.find('=') != std::string::npos) {
      client.properties[value.substr(0, value.find('='))] = value.substr(value.find('=') + 1);
    } else if (flag == "--prefix") {
      prefix = value;
    } else if (flag == "--partitions") {
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int32_t partition = 0;
        if (absl::SimpleAtoi(part, &partition)) options.static_partitions.push_back(partition);
      }
    } else if (flag == "--snapshot-every") {
      absl::SimpleAtoi(value, &options.snapshots.every_events);
    } else if (flag == "--replica") {
      options.replica = value;
    } else {
      std::cerr << "counter-processor: unknown flag " << flag << "\n";
      return 2;
    }
  }
  options.service = prefix + "counter";
  options.topics = helpline::es::ServiceTopics::For("counter", prefix);
  helpline::SystemClock clock;
  helpline::es::Processor processor(client, options, helpline::es::testing::CounterType(), clock,
                                    nullptr);
  if (absl::Status started = processor.Start(); !started.ok()) {
    std::cerr << "counter-processor: " << started << "\n";
    return 1;
  }
  bool announced = false;
  while (!shutdown.WaitFor(absl::Milliseconds(20))) {
    if (!announced && processor.Ready()) {
      std::cout << "ready" << std::endl;
      announced = true;
    }
  }
  processor.Stop();
  std::cout << "stopped" << std::endl;
  return 0;
}
