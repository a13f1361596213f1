// Real participants in a real LiveKit room: the bill comes from what the
// media server reported, the room closes with the session, forged webhooks
// change nothing and a lost one is caught up by the room listing.
#include <curl/curl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/base64url.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/server/http_endpoint.h"
#include "services/sessions/livekit_tokens.h"
#include "tests/support/child_process.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/livekit_server.h"
#include "tests/support/platform.h"
#include "tests/support/test_stack.h"

namespace helpline::testing {
namespace {

using sessions::v1::SessionsService;
using Stub = SessionsService::Stub;

struct PostAnswer {
  long status = 0;
  std::string body;
};

PostAnswer PostWebhook(int port, const std::string& authorization, const std::string& body,
                       const std::string& content_type = "application/webhook+json") {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  std::string url = absl::StrCat("http://127.0.0.1:", port, "/livekit/webhook");
  curl_slist* headers = curl_slist_append(nullptr, ("Content-Type: " + content_type).c_str());
  if (!authorization.empty()) {
    headers = curl_slist_append(headers, ("Authorization: " + authorization).c_str());
  }
  PostAnswer answer;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(
      curl.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* out) {
        static_cast<std::string*>(out)->append(data, size * count);
        return size * count;
      });
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &answer.body);
  if (curl_easy_perform(curl.get()) == CURLE_OK) {
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &answer.status);
  }
  curl_slist_free_all(headers);
  return answer;
}

// LiveKit's webhooks pass through here on their way to sessions: each is
// recorded, and dropped while `dropping` (one LiveKit gave up on).
class WebhookRelay {
 public:
  struct Delivery {
    std::string authorization;
    std::string body;
    nlohmann::json event;
    bool forwarded = false;
  };

  explicit WebhookRelay(int target_port)
      : target_port_(target_port),
        endpoint_("/livekit/webhook",
                  [this](const server::HttpRequest& request) { return Relay(request); }) {}

  int Start() {
    if (!endpoint_.Serve("127.0.0.1:0").ok()) return 0;
    return endpoint_.port();
  }
  void Drop(bool dropping) {
    absl::MutexLock lock(&mutex_);
    dropping_ = dropping;
  }
  std::vector<Delivery> Deliveries() {
    absl::MutexLock lock(&mutex_);
    return deliveries_;
  }

 private:
  server::HttpResponse Relay(const server::HttpRequest& request) {
    Delivery delivery{request.Header("authorization"), request.body,
                      nlohmann::json::parse(request.body, nullptr, false), false};
    bool dropping;
    {
      absl::MutexLock lock(&mutex_);
      dropping = dropping_;
    }
    server::HttpResponse response{200, "dropped\n"};
    if (!dropping) {
      PostAnswer answer = PostWebhook(target_port_, delivery.authorization, request.body,
                                      request.Header("content-type"));
      response = {static_cast<int>(answer.status == 0 ? 502 : answer.status), answer.body};
      delivery.forwarded = answer.status == 200;
    }
    absl::MutexLock lock(&mutex_);
    deliveries_.push_back(std::move(delivery));
    return response;
  }

  const int target_port_;
  server::HttpEndpoint endpoint_;
  absl::Mutex mutex_;
  bool dropping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mutex_);
};

// The time the person and the expert were both in the room, as LiveKit's
// webhooks report it: each identity connected while any of its participants
// is (from the createdAt of its joining to that of its leaving), up to `end`.
absl::Duration OverlapReported(const std::vector<WebhookRelay::Delivery>& deliveries,
                               const std::string& person, const std::string& expert,
                               absl::Time end) {
  std::map<std::string, std::pair<absl::Time, absl::Time>> intervals;  // by sid
  std::map<std::string, std::string> identity_of;
  for (const WebhookRelay::Delivery& delivery : deliveries) {
    const nlohmann::json& event = delivery.event;
    std::string kind = event.value("event", "");
    if (!event.contains("participant")) continue;
    const nlohmann::json& participant = event["participant"];
    std::string sid = participant.value("sid", "");
    identity_of[sid] = participant.value("identity", "");
    if (kind == "participant_joined") {
      intervals[sid] = {absl::FromUnixSeconds(std::stoll(event.value("createdAt", "0"))), end};
    } else if (kind == "participant_left" && intervals.count(sid)) {
      intervals[sid].second =
          std::min(end, absl::FromUnixSeconds(std::stoll(event.value("createdAt", "0"))));
    }
  }
  // Sweep the boundaries: both connected where each has an open interval.
  std::vector<std::pair<absl::Time, std::pair<int, int>>> changes;
  for (const auto& [sid, interval] : intervals) {
    int who = identity_of[sid] == person ? 0 : identity_of[sid] == expert ? 1 : -1;
    if (who < 0 || interval.second <= interval.first) continue;
    changes.push_back({interval.first, {who, +1}});
    changes.push_back({interval.second, {who, -1}});
  }
  std::sort(changes.begin(), changes.end());
  int open[2] = {0, 0};
  absl::Duration both;
  absl::Time since;
  for (const auto& [at, change] : changes) {
    bool before = open[0] > 0 && open[1] > 0;
    open[change.first] += change.second;
    bool after = open[0] > 0 && open[1] > 0;
    if (!before && after) since = at;
    if (before && !after) both += at - since;
  }
  return both;
}

class MediaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "media-e2e-" + std::to_string(getpid());
    mkdir(dir_.c_str(), 0755);
    webhook_port_ = PickFreePort();
    relay_ = std::make_unique<WebhookRelay>(webhook_port_);
    int relay_port = relay_->Start();
    ASSERT_NE(relay_port, 0);
    livekit_ = std::make_unique<LiveKitServer>(
        dir_, "test-key", kPlatformLivekitSecret,
        absl::StrCat("http://127.0.0.1:", relay_port, "/livekit/webhook"));
    ASSERT_TRUE(livekit_->Start());
    Platform::Options options;
    options.sessions = true;
    options.sessions_config = {
        {"sessions",
         {{"livekit_url", livekit_->ws_url()},
          {"livekit_api_url", livekit_->api_url()},
          {"connections_from", "media_server"},
          {"webhook_listen", absl::StrCat("127.0.0.1:", webhook_port_)},
          {"room_sync_interval", "3s"}}}};
    ASSERT_TRUE(platform_.Start("media", options));
    stub_ = SessionsService::NewStub(LocalChannel(platform_.sessions().port()));
  }

  void TearDown() override { EXPECT_TRUE(platform_.Stop()); }

  sessions::v1::JoinSessionResponse Join(const Account& who, const std::string& session_id) {
    sessions::v1::JoinSessionRequest request;
    request.set_session_id(session_id);
    sessions::v1::JoinSessionResponse response;
    absl::Status joined;
    for (int attempt = 0; attempt < 100; ++attempt) {  // until the session exists
      joined = Platform::Call(*stub_, &Stub::JoinSession, who, request, &response);
      if (!absl::IsNotFound(joined)) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_TRUE(joined.ok()) << joined;
    return response;
  }

  // A headless participant in the room with the token; waits until connected.
  std::unique_ptr<ChildProcess> Participant(const sessions::v1::JoinSessionResponse& joined,
                                            bool wait = true) {
    auto process = std::make_unique<ChildProcess>(
        LiveKitPython(),
        std::vector<std::string>{LiveKitParticipantScript(), joined.livekit_url(),
                                 joined.room_token()},
        absl::StrCat(dir_, "/participant-", ++participants_, ".log"));
    EXPECT_TRUE(process->Start());
    if (wait) EXPECT_TRUE(process->WaitForOutput("connected PA_", 30)) << process->Output();
    return process;
  }

  sessions::v1::Session Get(const Account& who, const std::string& session_id) {
    sessions::v1::GetSessionRequest request;
    request.set_session_id(session_id);
    sessions::v1::GetSessionResponse response;
    EXPECT_TRUE(Platform::Call(*stub_, &Stub::GetSession, who, request, &response).ok());
    return response.session();
  }

  // Polls until `done` holds for the session (at most `seconds`).
  bool Await(const Account& who, const std::string& session_id,
             const std::function<bool(const sessions::v1::Session&)>& done, double seconds = 30) {
    absl::Time deadline = absl::Now() + absl::Seconds(seconds);
    while (absl::Now() < deadline) {
      if (done(Get(who, session_id))) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  std::string dir_;
  int webhook_port_ = 0;
  int participants_ = 0;
  std::unique_ptr<WebhookRelay> relay_;
  std::unique_ptr<LiveKitServer> livekit_;
  Platform platform_;
  std::unique_ptr<Stub> stub_;
};

bool Live(const sessions::v1::Session& s) { return s.status() == sessions::v1::SESSION_STATUS_LIVE; }

TEST_F(MediaE2eTest, TheBillIsTheOverlapLiveKitReportedAndTheRoomClosesWithTheSession) {
  const std::string category = platform_.NewCategory();
  Account expert = platform_.OnlineExpert(category, 150);
  Account person = platform_.NewAccount();
  const std::string session_id = platform_.MatchNow(person, expert, category).match_id();

  // Both join through LiveKit: live only once the media server says so.
  sessions::v1::JoinSessionResponse person_join = Join(person, session_id);
  EXPECT_EQ(person_join.session().connection_source(),
            sessions::v1::CONNECTION_SOURCE_MEDIA_SERVER);
  EXPECT_FALSE(person_join.session().person_connected()) << "the app's join is not the media's";
  auto p1 = Participant(person_join);
  auto e1 = Participant(Join(expert, session_id));
  ASSERT_TRUE(Await(person, session_id, Live));

  // The person drops out and comes back as a new participant.
  absl::SleepFor(absl::Seconds(2));
  p1->Signal(SIGTERM);
  ASSERT_TRUE(Await(person, session_id, [](const auto& s) { return !s.person_connected(); }));
  auto p2 = Participant(Join(person, session_id));
  ASSERT_TRUE(Await(person, session_id, Live));
  absl::SleepFor(absl::Seconds(2));
  e1->Signal(SIGTERM);
  ASSERT_TRUE(Await(person, session_id, [](const auto& s) { return !s.expert_connected(); }));

  // The person's leaving is lost on its way: the room listing catches up.
  relay_->Drop(true);
  p2->Signal(SIGTERM);
  auto lost = [&] {
    for (const auto& delivery : relay_->Deliveries()) {
      if (delivery.event.value("event", "") == "participant_left" && !delivery.forwarded &&
          delivery.event["participant"].value("identity", "") == person.user_id) {
        return true;
      }
    }
    return false;
  };
  for (int i = 0; i < 100 && !lost(); ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(lost());
  EXPECT_TRUE(Get(person, session_id).person_connected()) << "nobody told sessions yet";
  ASSERT_TRUE(Await(person, session_id, [](const auto& s) { return !s.person_connected(); }, 15))
      << "the listing every 3 s did not catch up";
  relay_->Drop(false);

  // Forged and replayed webhooks change nothing.
  const int64_t version = Get(person, session_id).version();
  sessions::RoomTokenOptions keys{"test-key", kPlatformLivekitSecret, absl::Minutes(10)};
  std::string forged = nlohmann::json{
      {"event", "participant_joined"},
      {"id", "EV_forged"},
      {"createdAt", std::to_string(absl::ToUnixSeconds(absl::Now()))},
      {"room", {{"name", session_id}}},
      {"participant",
       {{"sid", "PA_forged"}, {"identity", person.user_id},
        {"joinedAtMs", std::to_string(absl::ToUnixMillis(absl::Now()))}}}}
                           .dump();
  auto sign = [&](const sessions::RoomTokenOptions& with, const std::string& body, absl::Time at) {
    nlohmann::json claims = {{"iss", with.api_key},
                             {"nbf", absl::ToUnixSeconds(at)},
                             {"exp", absl::ToUnixSeconds(at + absl::Minutes(5))},
                             {"sha256", absl::Base64Escape(sessions::Sha256(body))}};
    std::string input = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})") + "." +
                        Base64UrlEncode(claims.dump());
    return input + "." + Base64UrlEncode(sessions::HmacSha256(with.api_secret, input));
  };
  sessions::RoomTokenOptions wrong = keys;
  wrong.api_secret = "not-the-secret-but-32-characters-long";
  EXPECT_EQ(PostWebhook(webhook_port_, sign(wrong, forged, absl::Now()), forged).status, 401);
  EXPECT_EQ(PostWebhook(webhook_port_, sign(keys, forged, absl::Now() - absl::Minutes(10)), forged)
                .status,
            401)
      << "an old signature";
  EXPECT_EQ(PostWebhook(webhook_port_, "", forged).status, 401);
  EXPECT_EQ(PostWebhook(webhook_port_, sign(keys, forged, absl::Now()), forged, "application/json")
                .status,
            415);
  std::vector<WebhookRelay::Delivery> recorded = relay_->Deliveries();
  ASSERT_FALSE(recorded.empty());
  const WebhookRelay::Delivery* joined = nullptr;
  for (const auto& delivery : recorded) {
    if (delivery.event.value("event", "") == "participant_joined") joined = &delivery;
  }
  ASSERT_NE(joined, nullptr);
  std::string altered = joined->body;
  altered.replace(altered.find(joined->event["participant"].value("sid", "")), 5, "PA_zz");
  EXPECT_EQ(PostWebhook(webhook_port_, joined->authorization, altered).status, 401)
      << "a body other than the one signed";
  EXPECT_EQ(PostWebhook(webhook_port_, joined->authorization, joined->body).status, 200)
      << "a replay is accepted as the duplicate it is";
  EXPECT_EQ(Get(person, session_id).version(), version) << "nothing was written";
  EXPECT_FALSE(Get(person, session_id).person_connected());

  // Back together; the expert's app dies (no goodbye) and comes back.
  sessions::v1::JoinSessionResponse last_person_join = Join(person, session_id);
  auto p3 = Participant(last_person_join);
  auto e2 = Participant(Join(expert, session_id));
  ASSERT_TRUE(Await(person, session_id, Live));
  absl::SleepFor(absl::Seconds(2));
  absl::Time killed = absl::Now();
  e2->Signal(SIGKILL);
  ASSERT_TRUE(
      Await(person, session_id, [](const auto& s) { return !s.expert_connected(); }, 90));
  const absl::Duration abrupt_drop = absl::Now() - killed;
  RecordProperty("abrupt_drop_to_bill_seconds", std::to_string(absl::ToDoubleSeconds(abrupt_drop)));
  auto e3 = Participant(Join(expert, session_id));
  ASSERT_TRUE(Await(person, session_id, Live));
  absl::SleepFor(absl::Seconds(1));

  // Ending the session closes the room: both are put out.
  sessions::v1::EndSessionRequest end;
  end.set_session_id(session_id);
  sessions::v1::EndSessionResponse ended;
  ASSERT_TRUE(Platform::Call(*stub_, &Stub::EndSession, person, end, &ended).ok());
  EXPECT_TRUE(p3->WaitForOutput("disconnected", 15)) << p3->Output();
  EXPECT_TRUE(e3->WaitForOutput("disconnected", 15)) << e3->Output();

  // Nobody gets back in: no new token, and the last one finds no room.
  sessions::v1::JoinSessionRequest again;
  again.set_session_id(session_id);
  sessions::v1::JoinSessionResponse refused;
  EXPECT_EQ(Platform::Call(*stub_, &Stub::JoinSession, person, again, &refused).code(),
            absl::StatusCode::kFailedPrecondition);
  auto late = Participant(last_person_join, /*wait=*/false);
  for (int i = 0; i < 300 && late->running(); ++i) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(late->running()) << "a token for an ended session let someone in";
  EXPECT_EQ(late->Output().find("connected PA_"), std::string::npos) << late->Output();

  // The bill: the overlap of what LiveKit reported (its leave times are whole
  // seconds), the lost webhook included as LiveKit sent it.
  sessions::v1::Session over = Get(person, session_id);
  ASSERT_EQ(over.status(), sessions::v1::SESSION_STATUS_ENDED);
  absl::Duration reported = OverlapReported(relay_->Deliveries(), person.user_id,
                                            expert.user_id, FromProtoTime(over.ended_at()));
  absl::Duration billed = FromProtoDuration(over.billing().billable());
  EXPECT_GT(billed, absl::Seconds(5));
  EXPECT_LE(absl::AbsDuration(billed - reported), absl::Seconds(1))
      << "billed " << billed << ", LiveKit reported " << reported;
  std::cout << "media: billed " << billed << ", LiveKit reported " << reported
            << "; an app killed reached the bill after " << abrupt_drop << "\n";
}

}  // namespace
}  // namespace helpline::testing
