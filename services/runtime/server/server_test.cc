#include "services/runtime/server/server.h"

#include <signal.h>

#include <future>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "helpline/testing/v1/echo.grpc.pb.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/core/clock.h"
#include "tests/support/grpc_probe.h"

namespace helpline::server {
namespace {

using ::helpline::testing::v1::EchoRequest;
using ::helpline::testing::v1::EchoResponse;
using ::helpline::testing::v1::EchoService;
using ::testing::Contains;
using ::testing::HasSubstr;

class SlowEcho : public EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* context, const EchoRequest* request,
                    EchoResponse* response) override {
    absl::Time until = absl::Now() + absl::Seconds(request->delay().seconds()) +
                       absl::Nanoseconds(request->delay().nanos());
    while (absl::Now() < until) {
      if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      absl::SleepFor(absl::Milliseconds(5));
    }
    response->set_message(request->message());
    return grpc::Status::OK;
  }
};

ServerOptions LocalOptions() {
  ServerOptions options;
  options.service_name = "test";
  options.grpc_listen = "127.0.0.1:0";
  options.metrics_listen = "127.0.0.1:0";
  options.max_message_bytes = 64 * 1024;
  return options;
}

grpc::Status CallEcho(int port, const std::string& message, absl::Duration delay,
                      EchoResponse* response) {
  auto stub = EchoService::NewStub(::helpline::testing::LocalChannel(port));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  EchoRequest request;
  request.set_message(message);
  request.mutable_delay()->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(delay)));
  return stub->Echo(&context, request, response);
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.AddService(&echo_);
    ASSERT_TRUE(server_.Start().ok());
  }
  SlowEcho echo_;
  GrpcServer server_{LocalOptions()};
};

TEST_F(GrpcServerTest, HealthIsNotServingUntilTheServiceSaysSo) {
  EXPECT_EQ(::helpline::testing::HealthStatus(server_.grpc_port()).value_or("error"),
            "NOT_SERVING");
  EXPECT_EQ(::helpline::testing::HealthStatus(server_.grpc_port(), kLivenessService).value_or("error"),
            "SERVING")
      << "alive while not ready";
  server_.SetServing(true);
  EXPECT_EQ(::helpline::testing::HealthStatus(server_.grpc_port()).value_or("error"), "SERVING");
  server_.SetServing(false);
  EXPECT_EQ(::helpline::testing::HealthStatus(server_.grpc_port(), kLivenessService).value_or("error"),
            "SERVING")
      << "not ready is not dead";
}

TEST_F(GrpcServerTest, WhatOnlyARestartMendsFailsLiveness) {
  std::atomic<bool> writable{true};
  server_.AliveWhile([&] { return writable.load(); });
  server_.ServeWhen([] { return true; });
  auto liveness_becomes = [&](const std::string& expected) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (::helpline::testing::HealthStatus(server_.grpc_port(), kLivenessService).value_or("") ==
          expected) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  EXPECT_TRUE(liveness_becomes("SERVING"));
  writable.store(false);
  EXPECT_TRUE(liveness_becomes("NOT_SERVING"));
  EXPECT_EQ(::helpline::testing::HealthStatus(server_.grpc_port()).value_or("error"), "NOT_SERVING")
      << "not ready either";
  writable.store(true);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(::helpline::testing::HealthStatus(server_.grpc_port(), kLivenessService).value_or("error"),
            "NOT_SERVING")
      << "dead stays dead until restarted";
}

TEST_F(GrpcServerTest, HealthFollowsReadiness) {
  std::atomic<bool> caught_up{false};
  server_.ServeWhen([&] { return caught_up.load(); });
  auto status_becomes = [&](const std::string& expected) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (::helpline::testing::HealthStatus(server_.grpc_port()).value_or("") == expected) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  EXPECT_TRUE(status_becomes("NOT_SERVING"));
  caught_up.store(true);
  EXPECT_TRUE(status_becomes("SERVING"));
  caught_up.store(false);
  EXPECT_TRUE(status_becomes("NOT_SERVING"));
}

// Echo behind the CallGuard, which answers only while the server is serving.
class GuardedEcho : public EchoService::Service {
 public:
  explicit GuardedEcho(const GrpcServer& server)
      : guard_(nullptr, limiter_, [&server] { return server.serving(); }) {}
  grpc::Status Echo(grpc::ServerContext* context, const EchoRequest* request,
                    EchoResponse* response) override {
    return guard_.Public(context, [&] {
      response->set_message(request->message());
      return absl::OkStatus();
    });
  }

 private:
  SystemClock clock_;
  auth::RateLimiter limiter_{1000, 1000, clock_};
  auth::CallGuard guard_;
};

TEST(GuardedServerTest, CallsAreUnavailableUntilTheServiceIsCaughtUp) {
  GrpcServer server(LocalOptions());
  GuardedEcho echo(server);
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  std::atomic<bool> caught_up{false};
  server.ServeWhen([&] { return caught_up.load(); });
  EchoResponse response;
  grpc::Status early = CallEcho(server.grpc_port(), "hello", absl::ZeroDuration(), &response);
  EXPECT_EQ(early.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(early.error_message(), HasSubstr("catching up with its event log"));
  caught_up.store(true);
  grpc::Status answered;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;) {
    answered = CallEcho(server.grpc_port(), "hello", absl::ZeroDuration(), &response);
    if (answered.ok()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(answered.ok()) << answered.error_message();
  EXPECT_EQ(response.message(), "hello");
  server.Shutdown();
}

TEST_F(GrpcServerTest, ReflectionListsTheServices) {
  absl::StatusOr<std::vector<std::string>> services =
      ::helpline::testing::ReflectedServices(server_.grpc_port());
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("helpline.testing.v1.EchoService"));
  EXPECT_THAT(*services, Contains("grpc.health.v1.Health"));
}

// Calls that hold their threads (Watch streams) cannot make the server grow
// threads without end: past the cap a call is refused at once, and the
// server answers again as threads come free.
TEST(GrpcServerThreadsTest, PastTheCapCallsAreRefusedNotQueuedForever) {
  ServerOptions options = LocalOptions();
  options.max_threads = 8;
  options.idle_threads = 2;
  GrpcServer server(options);
  SlowEcho echo;
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  std::vector<std::future<grpc::Status>> held;
  for (int i = 0; i < 16; ++i) {
    held.push_back(std::async(std::launch::async, [&] {
      EchoResponse response;
      return CallEcho(server.grpc_port(), "hold", absl::Seconds(2), &response);
    }));
  }
  int refused = 0, answered = 0;
  for (auto& call : held) {
    grpc::Status status = call.get();
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
    if (status.ok()) ++answered;
  }
  EXPECT_GT(refused, 0) << "16 held calls on 8 threads";
  EXPECT_GT(answered, 0);
  EXPECT_EQ(refused + answered, 16) << "each either answered or refused";
  EchoResponse response;
  EXPECT_TRUE(CallEcho(server.grpc_port(), "after", absl::ZeroDuration(), &response).ok());
  server.Shutdown();
}

TEST(GrpcServerReflectionTest, OffMeansNoServiceIsDescribed) {
  ServerOptions options = LocalOptions();
  options.reflection = false;
  GrpcServer server(options);
  SlowEcho echo;
  server.AddService(&echo);
  ASSERT_TRUE(server.Start().ok());
  EchoResponse response;
  EXPECT_TRUE(CallEcho(server.grpc_port(), "hello", absl::ZeroDuration(), &response).ok());
  EXPECT_FALSE(::helpline::testing::ReflectedServices(server.grpc_port()).ok());
}

TEST_F(GrpcServerTest, MetricsCountRpcsByMethodAndCode) {
  EchoResponse response;
  ASSERT_TRUE(CallEcho(server_.grpc_port(), "hi", absl::ZeroDuration(), &response).ok());
  EXPECT_EQ(response.message(), "hi");
  ASSERT_TRUE(CallEcho(server_.grpc_port(), "hi", absl::ZeroDuration(), &response).ok());
  // Too large for the server's limit: rejected before the handler runs.
  grpc::Status too_big =
      CallEcho(server_.grpc_port(), std::string(100 * 1024, 'x'), absl::ZeroDuration(), &response);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  absl::StatusOr<std::string> metrics = ::helpline::testing::HttpGet(server_.metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(*metrics, HasSubstr("grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"/"
                                  "helpline.testing.v1.EchoService/Echo\"} 2"));
  EXPECT_THAT(*metrics, HasSubstr("grpc_server_handling_seconds_count{grpc_method=\"/"
                                  "helpline.testing.v1.EchoService/Echo\"}"));
}

TEST_F(GrpcServerTest, ShutdownLetsCallsInFlightFinishAndRefusesNewOnes) {
  int port = server_.grpc_port();
  server_.SetServing(true);
  std::future<grpc::Status> in_flight = std::async(std::launch::async, [port] {
    EchoResponse response;
    return CallEcho(port, "late", absl::Milliseconds(800), &response);
  });
  absl::SleepFor(absl::Milliseconds(200));  // let the call reach the handler
  server_.Shutdown();
  EXPECT_TRUE(in_flight.get().ok());
  EchoResponse response;
  EXPECT_FALSE(CallEcho(port, "after", absl::ZeroDuration(), &response).ok());
}

TEST(ShutdownSignalTest, SigtermRequestsShutdown) {
  ShutdownSignal signal;
  EXPECT_FALSE(signal.WaitFor(absl::Milliseconds(50)));
  std::thread sender([] {
    absl::SleepFor(absl::Milliseconds(50));
    kill(getpid(), SIGTERM);
  });
  EXPECT_TRUE(signal.WaitFor(absl::Seconds(10)));
  sender.join();
}

TEST(ServerConfigTest, ServerKeysHaveWorkingDefaults) {
  ConfigSchema schema;
  AddServerKeys(schema);
  absl::StatusOr<Config> config = LoadConfig(schema, R"({"grpc": {"listen": "127.0.0.1:0"}})", {});
  ASSERT_TRUE(config.ok()) << config.status();
  ServerOptions options = ServerOptionsFromConfig("identity", *config);
  EXPECT_EQ(options.grpc_listen, "127.0.0.1:0");
  EXPECT_EQ(options.shutdown_grace, absl::Seconds(10));
  EXPECT_EQ(options.max_message_bytes, 4 << 20);
}

TEST(GrpcServerStartTest, PortInUseIsAClearError) {
  GrpcServer first(LocalOptions());
  ASSERT_TRUE(first.Start().ok());
  ServerOptions options = LocalOptions();
  options.grpc_listen = "127.0.0.1:" + std::to_string(first.grpc_port());
  GrpcServer second(options);
  absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr(options.grpc_listen));
}

}  // namespace
}  // namespace helpline::server
