#include "tests/support/livekit_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/grpc_probe.h"

namespace helpline::testing {
namespace {

bool Bindable(int port, int type) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return free;
}

// Three consecutive ports free for TCP and UDP: signalling and API, ICE over
// TCP, media over UDP.
int PickPortRun() {
  std::mt19937 random(std::random_device{}());
  for (int attempt = 0; attempt < 500; ++attempt) {
    int base = std::uniform_int_distribution<int>(20000, 59990)(random);
    bool free = true;
    for (int port = base; port < base + 3 && free; ++port) {
      free = Bindable(port, SOCK_STREAM) && Bindable(port, SOCK_DGRAM);
    }
    if (free) return base;
  }
  return 0;
}

}  // namespace

std::string LiveKitPython() { return LIVEKIT_PYTHON; }
std::string LiveKitParticipantScript() {
  return std::string(HELPLINE_SOURCE_DIR) + "/tools/media/livekit_participant.py";
}

LiveKitServer::LiveKitServer(std::string dir, std::string api_key, std::string api_secret,
                             std::string webhook_url)
    : dir_(std::move(dir)),
      api_key_(std::move(api_key)),
      api_secret_(std::move(api_secret)),
      webhook_url_(std::move(webhook_url)) {}

LiveKitServer::~LiveKitServer() {
  if (process_) process_->Signal(SIGKILL);
}

std::string LiveKitServer::ws_url() const { return absl::StrCat("ws://127.0.0.1:", port_); }
std::string LiveKitServer::api_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

::testing::AssertionResult LiveKitServer::Start() {
  port_ = PickPortRun();
  if (port_ == 0) return ::testing::AssertionFailure() << "no three free ports for LiveKit";
  std::string config = dir_ + "/livekit.yaml";
  {
    std::ofstream out(config, std::ios::trunc);
    out << "port: " << port_ << "\n"
        << "bind_addresses: [\"127.0.0.1\"]\n"
        << "rtc:\n  tcp_port: " << port_ + 1 << "\n  udp_port: " << port_ + 2
        << "\n  node_ip: 127.0.0.1\n  use_external_ip: false\n  enable_loopback_candidate: true\n"
        << "keys:\n  " << api_key_ << ": " << api_secret_ << "\n"
        << "webhook:\n  api_key: " << api_key_ << "\n  urls: [\"" << webhook_url_ << "\"]\n"
        << "room:\n  auto_create: false\n";
  }
  process_ = std::make_unique<ChildProcess>(LIVEKIT_SERVER_PATH,
                                            std::vector<std::string>{"--config", config},
                                            dir_ + "/livekit.log");
  if (!process_->Start()) return ::testing::AssertionFailure() << "cannot start livekit-server";
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (!process_->running()) {
      return ::testing::AssertionFailure() << "livekit-server exited:\n" << process_->Output();
    }
    absl::StatusOr<std::string> answer = HttpGet(port_, "/");
    if (answer.ok() && answer->find("OK") != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return ::testing::AssertionFailure() << "livekit-server did not answer:\n" << process_->Output();
}

}  // namespace helpline::testing
