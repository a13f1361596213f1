#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/core/proto_time.h"
#include "services/sessions/livekit_tokens.h"
#include "services/sessions/livekit_webhook.h"

namespace helpline::sessions {
namespace {

const RoomTokenOptions kKeys{"APIkey1", "a-livekit-secret-of-at-least-32-characters", absl::Minutes(10)};
const absl::Time kNow = absl::FromUnixSeconds(1'798'761'600);

std::string Sha256Base64(const std::string& body) { return absl::Base64Escape(Sha256(body)); }

// What LiveKit sends: HS256 over {iss, nbf, exp, sha256}.
std::string SignWebhook(const RoomTokenOptions& keys, const std::string& body, absl::Time now,
                        std::string alg = "HS256") {
  nlohmann::json header = {{"alg", alg}, {"typ", "JWT"}};
  nlohmann::json claims = {{"iss", keys.api_key},
                           {"nbf", absl::ToUnixSeconds(now)},
                           {"exp", absl::ToUnixSeconds(now + absl::Minutes(5))},
                           {"sha256", Sha256Base64(body)}};
  std::string input =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  return input + "." + Base64UrlEncode(HmacSha256(keys.api_secret, input));
}

const std::string kJoined = R"({"event":"participant_joined","room":{"sid":"RM_1","name":"session-1"},
  "participant":{"sid":"PA_abc","identity":"person-1","state":"ACTIVE","joinedAt":"1798761590",
  "joinedAtMs":"1798761590123"},"id":"EV_1","createdAt":"1798761600"})";

TEST(LiveKitWebhook, OnlyABodySignedWithTheSecretWithinItsTimesIsAccepted) {
  EXPECT_TRUE(VerifyWebhook(kKeys, SignWebhook(kKeys, kJoined, kNow), kJoined, kNow).ok());
  EXPECT_TRUE(VerifyWebhook(kKeys, "Bearer " + SignWebhook(kKeys, kJoined, kNow), kJoined, kNow).ok());
  RoomTokenOptions other = kKeys;
  other.api_secret = "another-secret-of-at-least-32-characters!";
  auto refused = [&](const std::string& authorization, const std::string& body, absl::Time now) {
    absl::Status status = VerifyWebhook(kKeys, authorization, body, now);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
    return std::string(status.message());
  };
  EXPECT_EQ(refused("", kJoined, kNow), "webhook refused: no Authorization header");
  EXPECT_EQ(refused(SignWebhook(other, kJoined, kNow), kJoined, kNow),
            "webhook refused: bad signature");
  std::string altered = kJoined;
  altered.replace(altered.find("person-1"), 8, "expert-1");
  EXPECT_EQ(refused(SignWebhook(kKeys, kJoined, kNow), altered, kNow),
            "webhook refused: the body is not the one signed");
  EXPECT_EQ(refused(SignWebhook(kKeys, kJoined, kNow - absl::Minutes(10)), kJoined, kNow),
            "webhook refused: expired")
      << "a replayed old webhook";
  EXPECT_EQ(refused(SignWebhook(kKeys, kJoined, kNow + absl::Minutes(3)), kJoined, kNow),
            "webhook refused: not valid yet");
  EXPECT_EQ(refused(SignWebhook(kKeys, kJoined, kNow, "none"), kJoined, kNow),
            "webhook refused: only alg HS256 is accepted");
  RoomTokenOptions stranger = kKeys;
  stranger.api_key = "APIother";
  EXPECT_EQ(refused(SignWebhook(stranger, kJoined, kNow), kJoined, kNow),
            "webhook refused: unknown API key");
  EXPECT_EQ(refused("not.a.token", kJoined, kNow).rfind("webhook refused: ", 0), 0u);
}

absl::Time Faster(absl::Time wall) { return kNow + (wall - kNow) * 60; }

TEST(LiveKitWebhook, ParticipantEventsBecomeConnectionsOfTheRoomsSessionOnTheServiceClock) {
  auto joined = CommandFromWebhook(kJoined, Faster);
  ASSERT_TRUE(joined.ok()) << joined.status();
  ASSERT_TRUE(joined->has_value());
  EXPECT_EQ((*joined)->session_id, "session-1");
  const v1::MediaConnection& change = (*joined)->command.media_connection();
  EXPECT_EQ(change.participant_sid(), "PA_abc");
  EXPECT_EQ(change.identity(), "person-1");
  EXPECT_TRUE(change.connected());
  EXPECT_EQ(FromProtoTime(change.at()), kNow) << "when its media flowed, not its signalling join";
  auto again = CommandFromWebhook(kJoined, Faster);
  EXPECT_EQ((*again)->command_id, (*joined)->command_id) << "a redelivery is the same command";

  std::string left = R"({"event":"participant_left","room":{"name":"session-1"},
    "participant":{"sid":"PA_abc","identity":"person-1"},"id":"EV_2","createdAt":"1798761610"})";
  auto closed = CommandFromWebhook(left, Faster);
  ASSERT_TRUE(closed.ok() && closed->has_value());
  EXPECT_FALSE((*closed)->command.media_connection().connected());
  EXPECT_EQ(FromProtoTime((*closed)->command.media_connection().at()), kNow + absl::Minutes(10))
      << "ten wall seconds at rate 60";
  EXPECT_NE((*closed)->command_id, (*joined)->command_id);

  std::string aborted = R"({"event":"participant_connection_aborted","room":{"name":"s"},
    "participant":{"sid":"PA_x","identity":"u"},"id":"EV_3","createdAt":1798761600})";
  EXPECT_FALSE((*CommandFromWebhook(aborted, Faster))->command.media_connection().connected());

  std::string finished = R"({"event":"room_finished","room":{"name":"session-1"},
    "id":"EV_4","createdAt":"1798761600"})";
  auto nobody = CommandFromWebhook(finished, Faster);
  ASSERT_TRUE(nobody.ok() && nobody->has_value());
  EXPECT_TRUE((*nobody)->command.has_media_participants());
  EXPECT_EQ((*nobody)->command.media_participants().participants_size(), 0);

  auto other = CommandFromWebhook(
      R"({"event":"track_published","room":{"name":"s"},"id":"EV_5","createdAt":"1"})", Faster);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value()) << "nothing for a session";

  for (const char* bad :
       {"not json", R"({"id":"EV_6"})", R"({"event":"participant_left","createdAt":"1"})",
        R"({"event":"participant_left","id":"EV_7","createdAt":"1","room":{"name":"s"}})",
        R"({"event":"participant_left","id":"EV_8","room":{"name":"s"},
            "participant":{"sid":"PA_1","identity":"u"}})"}) {
    EXPECT_EQ(CommandFromWebhook(bad, Faster).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(LiveKitTokens, RoomAndServerTokensCarryWallClockTimesAndTheirGrants) {
  RoomToken room = IssueRoomToken(kKeys, "person-1", "session-1", true, kNow);
  auto parsed = auth::ParseToken(room.token);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->claims["iat"], absl::ToUnixSeconds(kNow));
  EXPECT_EQ(parsed->claims["nbf"], absl::ToUnixSeconds(kNow));
  EXPECT_EQ(parsed->claims["exp"], absl::ToUnixSeconds(kNow + absl::Minutes(10)));
  std::string server = IssueServerToken(kKeys, {{"roomAdmin", true}, {"room", "session-1"}}, kNow);
  auto admin = auth::ParseToken(server);
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(HmacSha256(kKeys.api_secret, admin->signing_input), admin->signature);
  EXPECT_EQ(admin->claims["iss"], kKeys.api_key);
  EXPECT_EQ(admin->claims["video"]["room"], "session-1");
  EXPECT_EQ(admin->claims["exp"], absl::ToUnixSeconds(kNow + absl::Minutes(5)));
}

}  // namespace
}  // namespace helpline::sessions
