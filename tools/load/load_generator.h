#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tools/client/client.h"

// Simulated people and experts running the real journey against the five
// services: experts approved and heartbeating; people who register, search,
// ask for help, have the offered expert accept, join with the expert, end
// the call, review, and sometimes cancel the request or ask for a refund.
namespace helpline::load {

// Every simulated account's password.
inline constexpr char kLoadPassword[] = "load-password-1";

struct LoadOptions {
  client::Targets targets;
  std::string admin_email;
  std::string admin_password;
  // The services' clock rate (tokens expire that much sooner).
  double clock_rate = 1;
  // Made unique per run: accounts are "<tag>-person-3@load.helpline.local".
  std::string run_tag = "load";
  int categories = 2;
  int experts = 8;
  // People asking at once; each runs journeys one after another.
  int people = 8;
  // Journeys one person runs before a new person registers.
  int journeys_per_person = 5;
  // Journeys started per second over all people; 0: as fast as they go.
  double journeys_per_second = 0;
  // Real time both stay in the call before the person ends it.
  absl::Duration call_length = absl::Milliseconds(200);
  double cancel_share = 0.1;
  double review_share = 0.7;
  double refund_share = 0.1;
  // Offers the expert lets run out without answering (away from the screen).
  double unanswered_offer_share = 0;
  // How long a call is retried while the services answer UNAVAILABLE (a
  // restart, a broker away) before the journey counts as failed.
  absl::Duration retry_for = absl::Seconds(90);
  // The services' metrics ports on 127.0.0.1, scraped once a second for
  // helpline_processor_commands_lag.
  std::vector<int> metrics_ports;
  // Called about once a second with a one-line progress summary.
  std::function<void(const std::string&)> progress;
};

// A write the services acknowledged, as the event it must have left exactly
// once: on `service`'s events topic, aggregate `aggregate_id`, `event_type`
// (short name, "MatchMade").
struct Acknowledged {
  std::string service;
  std::string aggregate_id;
  std::string event_type;
};

struct RpcFigures {
  int64_t calls = 0;
  double per_second = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  // By gRPC status code name, every attempt (retries too).
  std::map<std::string, int64_t> errors;
};

struct LoadReport {
  absl::Duration elapsed;
  int64_t journeys_started = 0;
  // Ended calls (with review and refund when the journey had them).
  int64_t journeys_completed = 0;
  int64_t journeys_cancelled = 0;  // the person cancelled the request
  int64_t journeys_expired = 0;    // nobody accepted in time
  // Gave up: a call failed with an error that is not retried, or kept
  // failing past `retry_for`. By the first error's text.
  std::map<std::string, int64_t> journeys_failed;
  double journeys_per_second = 0;
  // Offers that reached an expert already in a call (declined).
  int64_t offers_to_busy_experts = 0;
  int64_t offers_unanswered = 0;
  int64_t max_commands_lag = 0;
  std::map<std::string, RpcFigures> rpcs;
  std::vector<Acknowledged> acknowledged;
  // Every help request asked (ids); every person's and expert's email.
  std::vector<std::string> help_requests;
  std::vector<std::string> people;
  std::vector<std::string> experts;

  // For people: a summary, one line per RPC.
  std::string Text() const;
  nlohmann::json Json() const;
};

class LoadGenerator {
 public:
  LoadGenerator(LoadOptions options);
  ~LoadGenerator();

  // Categories and approved, published experts, heartbeating from then on.
  absl::Status Setup();
  // Runs journeys until `stop` is set or `duration` passed, then lets the
  // journeys in flight finish.
  LoadReport Run(absl::Duration duration, const std::atomic<bool>& stop);
  // Journeys completed so far (while Run runs).
  int64_t Completed() const;

 private:
  struct Expert;
  struct Recorder;
  class Person;

  absl::Status SetUpExpert(int index);
  // One heartbeat with the expert's status now (busy while in a call).
  void Beat(Expert& expert);
  void Heartbeats();
  void ScrapeLag();
  Expert* FindExpert(const std::string& user_id);
  // Marks the expert in a call and returns it; nullptr if already in one.
  Expert* TakeExpert(const std::string& user_id);

  LoadOptions options_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<Recorder> recorder_;
  absl::Mutex admin_mutex_;
  client::User admin_ ABSL_GUARDED_BY(admin_mutex_);
  std::vector<std::string> categories_;
  std::vector<std::unique_ptr<Expert>> experts_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> max_lag_{0};
  std::vector<std::thread> background_;
};

}  // namespace helpline::load
