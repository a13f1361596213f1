#pragma once

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/child_process.h"

namespace helpline::testing {

// A LiveKit server of a test's own (tools/bootstrap builds it), on loopback
// ports picked at start, with one API key, its webhooks to `webhook_url`,
// and no room created but by the API (room.auto_create false), as the local
// stack runs it.
class LiveKitServer {
 public:
  LiveKitServer(std::string dir, std::string api_key, std::string api_secret,
                std::string webhook_url);
  ~LiveKitServer();

  // Starts it and waits until it answers (up to 30 s).
  ::testing::AssertionResult Start();
  std::string ws_url() const;
  std::string api_url() const;

 private:
  const std::string dir_;
  const std::string api_key_;
  const std::string api_secret_;
  const std::string webhook_url_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// The program (a Python with the livekit package) and script that join a
// room headless: tools/media/livekit_participant.py.
std::string LiveKitPython();
std::string LiveKitParticipantScript();

}  // namespace helpline::testing
