#include "services/runtime/auth/token_verifier.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/runtime/auth/key_set.h"
#include "services/runtime/auth/rate_limiter.h"
#include "services/runtime/core/errors.h"

namespace helpline::auth {
namespace {

using ::testing::HasSubstr;

class StaticKeys : public PublicKeySource {
 public:
  absl::StatusOr<std::vector<Ed25519Key>> FetchKeys() override {
    ++fetches;
    return keys;
  }
  std::vector<Ed25519Key> keys;
  int fetches = 0;
};

class TokenVerifierTest : public ::testing::Test {
 protected:
  TokenVerifierTest() : key_(Ed25519Key::Generate("k1")) { keys_.keys = {key_}; }

  AccessClaims Claims() {
    AccessClaims claims;
    claims.issuer = "helpline-identity";
    claims.audience = "helpline";
    claims.subject = "user-1";
    claims.roles = {"person", "expert"};
    claims.token_id = "t1";
    claims.issued_at = clock_.Now();
    claims.expires_at = clock_.Now() + absl::Minutes(15);
    return claims;
  }

  absl::Status VerifyError(const std::string& token) {
    return verifier_.Verify(token).status();
  }

  FakeClock clock_;
  Ed25519Key key_;
  StaticKeys keys_;
  TokenVerifier verifier_{VerifierOptions{}, keys_, clock_};
};

TEST_F(TokenVerifierTest, ValidTokenGivesThePrincipal) {
  absl::StatusOr<Principal> who = verifier_.Verify(SignToken(Claims(), key_));
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->user_id, "user-1");
  EXPECT_TRUE(who->HasRole("expert"));
  EXPECT_FALSE(who->HasRole("admin"));
  EXPECT_EQ(who->token_id, "t1");
}

TEST_F(TokenVerifierTest, ExpiredTokenIsRefusedAfterTheLeeway) {
  std::string token = SignToken(Claims(), key_);
  clock_.Advance(absl::Minutes(15) + absl::Seconds(20));
  EXPECT_TRUE(verifier_.Verify(token).ok()) << "within the 30 s leeway";
  clock_.Advance(absl::Seconds(20));
  EXPECT_THAT(VerifyError(token).message(), HasSubstr("expired"));
  EXPECT_EQ(VerifyError(token).code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenVerifierTest, TamperedTokenIsRefused) {
  std::string token = SignToken(Claims(), key_);
  // Same signature, claims changed to another user.
  AccessClaims other = Claims();
  other.subject = "admin-user";
  std::string forged = SignToken(other, key_);
  std::string tampered = forged.substr(0, forged.rfind('.')) + token.substr(token.rfind('.'));
  EXPECT_THAT(VerifyError(tampered).message(), HasSubstr("bad signature"));
  // Signed by a key that merely reuses a published kid.
  EXPECT_THAT(VerifyError(SignToken(Claims(), Ed25519Key::Generate("k1"))).message(),
              HasSubstr("bad signature"));
}

TEST_F(TokenVerifierTest, WrongAudienceOrIssuerIsRefused) {
  AccessClaims claims = Claims();
  claims.audience = "someone-else";
  EXPECT_THAT(VerifyError(SignToken(claims, key_)).message(), HasSubstr("wrong audience"));
  claims = Claims();
  claims.issuer = "evil";
  EXPECT_THAT(VerifyError(SignToken(claims, key_)).message(), HasSubstr("wrong issuer"));
}

TEST_F(TokenVerifierTest, AlgNoneAndOtherAlgorithmsAreRefused) {
  std::string token = SignToken(Claims(), key_);
  std::string payload = token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1);
  for (const char* alg : {"none", "HS256", "RS256", "ES256"}) {
    std::string header = Base64UrlEncode(absl::StrCat(R"({"alg":")", alg, R"(","kid":"k1"})"));
    EXPECT_THAT(VerifyError(absl::StrCat(header, ".", payload, ".")).message(),
                HasSubstr("only alg EdDSA"))
        << alg;
  }
}

TEST_F(TokenVerifierTest, HeadersAndClaimsOfTheWrongTypeAreRefusedNotThrown) {
  std::string token = SignToken(Claims(), key_);
  std::string payload = token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1);
  std::string good_header = token.substr(0, token.find('.'));
  for (const char* header : {R"({"alg":1,"kid":"k1"})", R"({"alg":"EdDSA","kid":["k1"]})"}) {
    EXPECT_EQ(VerifyError(absl::StrCat(Base64UrlEncode(header), ".", payload, ".AAAA")).code(),
              absl::StatusCode::kUnauthenticated)
        << header;
  }
  EXPECT_EQ(VerifyError(absl::StrCat(good_header, ".", Base64UrlEncode(R"({"iss":7})"), ".AAAA")).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenVerifierTest, UnknownKidRefreshesOnceThenIsRefused) {
  Ed25519Key rotated = Ed25519Key::Generate("k2");
  std::string token = SignToken(Claims(), rotated);
  EXPECT_THAT(VerifyError(token).message(), HasSubstr("unknown signing key 'k2'"));
  int fetches = keys_.fetches;
  // A flood of unknown kids does not hammer the key source.
  for (int i = 0; i < 100; ++i) VerifyError(token).IgnoreError();
  EXPECT_EQ(keys_.fetches, fetches);
}

// Identity restarting: the fetch fails, and the next try comes within a
// second rather than after the refresh interval.
TEST_F(TokenVerifierTest, AFailedRefreshIsRetriedSoon) {
  class Flaky : public PublicKeySource {
   public:
    absl::StatusOr<std::vector<Ed25519Key>> FetchKeys() override {
      if (down) return absl::UnavailableError("identity restarting");
      return keys;
    }
    bool down = true;
    std::vector<Ed25519Key> keys;
  } source;
  source.keys = {key_};
  TokenVerifier verifier(
      VerifierOptions{.retry_interval = absl::Milliseconds(20)}, source, clock_);
  std::string token = SignToken(Claims(), key_);
  EXPECT_EQ(verifier.Verify(token).status().code(), absl::StatusCode::kUnavailable)
      << "try again, not sign in again";
  source.down = false;
  EXPECT_FALSE(verifier.Verify(token).ok()) << "no second fetch at once";
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_TRUE(verifier.Verify(token).ok()) << "retried once the retry interval passed";
}

// A fetch that hangs (identity slow to answer) holds up only the tokens that
// need it.
TEST_F(TokenVerifierTest, KnownKeysVerifyWhileAFetchHangs) {
  class Hanging : public PublicKeySource {
   public:
    absl::StatusOr<std::vector<Ed25519Key>> FetchKeys() override {
      if (++fetches > 1) {
        fetching.Notify();
        release.WaitForNotification();
      }
      return keys;
    }
    std::atomic<int> fetches{0};
    absl::Notification fetching;
    absl::Notification release;
    std::vector<Ed25519Key> keys;
  } source;
  source.keys = {key_};
  TokenVerifier verifier(VerifierOptions{.min_refresh_interval = absl::ZeroDuration()}, source,
                         clock_);
  ASSERT_TRUE(verifier.Verify(SignToken(Claims(), key_)).ok());

  Ed25519Key rotated = Ed25519Key::Generate("k2");
  absl::StatusOr<Principal> waited;
  std::thread unknown_kid([&] { waited = verifier.Verify(SignToken(Claims(), rotated)); });
  source.fetching.WaitForNotification();
  AccessClaims other = Claims();
  other.token_id = "t2";
  EXPECT_TRUE(verifier.Verify(SignToken(other, key_)).ok()) << "not stuck behind the fetch";
  source.keys = {key_, rotated};
  source.release.Notify();
  unknown_kid.join();
  EXPECT_TRUE(waited.ok()) << waited.status();
}

TEST_F(TokenVerifierTest, NewKeyPublishedBeforeSigningIsPickedUp) {
  StaticKeys source;
  SigningKeySet before = *SigningKeySet::FromJson(SigningKeySet::GenerateJson({{"old", "active"}}));
  source.keys = before.PublicKeys();
  TokenVerifier verifier(VerifierOptions{.min_refresh_interval = absl::ZeroDuration()}, source,
                         clock_);
  AccessClaims claims = Claims();
  std::string old_token = SignToken(claims, before.active());
  ASSERT_TRUE(verifier.Verify(old_token).ok());

  // Rotation: a new active key, the old one retired but still published.
  Ed25519Key fresh = Ed25519Key::Generate("new");
  source.keys = {before.PublicKeys()[0], fresh};
  EXPECT_TRUE(verifier.Verify(SignToken(claims, fresh)).ok()) << "unknown kid refreshed the keys";
  EXPECT_TRUE(verifier.Verify(old_token).ok()) << "old tokens stay valid until they expire";
  clock_.Advance(absl::Minutes(16));
  EXPECT_FALSE(verifier.Verify(old_token).ok());
}

TEST_F(TokenVerifierTest, AKeyDroppedFromTheSetStopsVerifyingOnceTheKeysAreStale) {
  StaticKeys source;
  source.keys = {key_};
  TokenVerifier verifier(VerifierOptions{.max_key_age = absl::Minutes(5)}, source, clock_);
  std::string token = SignToken(Claims(), key_);
  ASSERT_TRUE(verifier.Verify(token).ok());
  source.keys = {};
  EXPECT_TRUE(verifier.Verify(token).ok()) << "cached for a while";
  absl::SleepFor(absl::Milliseconds(1));
  TokenVerifier quick(VerifierOptions{.max_key_age = absl::ZeroDuration()}, source, clock_);
  source.keys = {key_};
  ASSERT_TRUE(quick.Verify(token).ok());
  source.keys = {};
  absl::SleepFor(absl::Milliseconds(1));
  EXPECT_FALSE(quick.Verify(token).ok());
}

TEST_F(TokenVerifierTest, ATokenVerifiedBeforeStillExpires) {
  StaticKeys source;
  source.keys = {key_};
  TokenVerifier verifier(VerifierOptions{}, source, clock_);
  std::string token = SignToken(Claims(), key_);
  ASSERT_TRUE(verifier.Verify(token).ok());
  ASSERT_TRUE(verifier.Verify(token).ok());
  clock_.Advance(absl::Minutes(16));
  absl::StatusOr<Principal> late = verifier.Verify(token);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenVerifierTest, OverlongLifetimeAndGarbageAreRefused) {
  AccessClaims claims = Claims();
  claims.expires_at = claims.issued_at + absl::Hours(24);
  EXPECT_THAT(VerifyError(SignToken(claims, key_)).message(), HasSubstr("lifetime"));
  for (const char* garbage : {"", "abc", "a.b", "a.b.c.d", "!!.??.**"}) {
    EXPECT_EQ(VerifyError(garbage).code(), absl::StatusCode::kUnauthenticated) << garbage;
  }
}

TEST(SigningKeySetTest, ExactlyOneActiveKey) {
  EXPECT_TRUE(SigningKeySet::FromJson(SigningKeySet::GenerateJson({{"a", "active"}, {"b", "next"}})).ok());
  EXPECT_FALSE(SigningKeySet::FromJson(SigningKeySet::GenerateJson({{"a", "next"}})).ok());
  EXPECT_FALSE(SigningKeySet::FromJson(SigningKeySet::GenerateJson({{"a", "active"}, {"b", "active"}})).ok());
  EXPECT_FALSE(SigningKeySet::FromJson(SigningKeySet::GenerateJson({{"a", "active"}, {"a", "next"}})).ok());
  EXPECT_FALSE(SigningKeySet::FromJson(R"({"keys": [{"kid": "a", "seed": "c2hvcnQ", "status": "active"}]})").ok());
  SigningKeySet set = *SigningKeySet::FromJson(SigningKeySet::GenerateJson({{"a", "retired"}, {"b", "active"}}));
  EXPECT_EQ(set.active().kid, "b");
  EXPECT_EQ(set.PublicKeys().size(), 2u);
  EXPECT_TRUE(set.PublicKeys()[0].secret_key.empty()) << "published keys carry no secret";
}

TEST(RateLimiterTest, BurstThenSteadyRateWithRetryInfo) {
  FakeClock clock;
  RateLimiter limiter(/*per_second=*/2, /*burst=*/3, clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("peer-a").ok());
  absl::Status limited = limiter.Take("peer-a");
  EXPECT_EQ(limited.code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(errors::RetryAfter(limited).has_value());
  EXPECT_EQ(*errors::RetryAfter(limited), absl::Milliseconds(500));
  EXPECT_TRUE(limiter.Take("peer-b").ok()) << "per key";
  clock.Advance(absl::Milliseconds(500));
  EXPECT_TRUE(limiter.Take("peer-a").ok());
  EXPECT_FALSE(limiter.Take("peer-a").ok());
}

TEST(RateLimiterTest, AGivenBackTokenCanBeTakenAgainButNeverPastTheBurst) {
  FakeClock clock;
  RateLimiter limiter(/*per_second=*/1, /*burst=*/2, clock);
  ASSERT_TRUE(limiter.Take("account").ok());
  ASSERT_TRUE(limiter.Take("account").ok());
  EXPECT_FALSE(limiter.Take("account").ok());
  limiter.GiveBack("account");  // that call was refused before it did anything
  EXPECT_TRUE(limiter.Take("account").ok());
  EXPECT_FALSE(limiter.Take("account").ok());
  for (int i = 0; i < 5; ++i) limiter.GiveBack("account");
  EXPECT_TRUE(limiter.Take("account").ok());
  EXPECT_TRUE(limiter.Take("account").ok());
  EXPECT_FALSE(limiter.Take("account").ok()) << "giving back never raises a bucket past its burst";
}

}  // namespace
}  // namespace helpline::auth
