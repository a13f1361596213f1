#include "services/runtime/privacy/personal_text.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "helpline/runtime/v1/envelope.pb.h"
#include "services/runtime/kafka/admin.h"
#include "tests/support/test_stack.h"

namespace helpline::privacy {
namespace {

using ::helpline::testing::TestKafka;
using ::helpline::testing::UniqueName;

// Accounts the test has "deleted" (what ClosedAccounts says in a service).
class Closed {
 public:
  void Close(const std::string& user_id) {
    absl::MutexLock lock(&mutex_);
    closed_.insert(user_id);
  }
  bool operator()(const std::string& user_id) {
    absl::MutexLock lock(&mutex_);
    return closed_.contains(user_id);
  }

 private:
  absl::Mutex mutex_;
  absl::flat_hash_set<std::string> closed_;
};

class PersonalTextKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = UniqueName("personal") + ".";
    auto admin = kafka::Admin::Create(TestKafka());
    ASSERT_TRUE(admin.ok()) << admin.status();
    ASSERT_TRUE((*admin)
                    ->CreateTopics({{prefix_ + "keys", 2, 1, {{"cleanup.policy", "compact"}}},
                                    {prefix_ + "deadletter", 1, 1, {}}},
                                   absl::Seconds(60))
                    .ok());
  }

  // One replica's PersonalText, with Kafka clients of its own (they share
  // the topic and the key-encryption key).
  std::unique_ptr<PersonalText> Replica(Closed& closed, const std::string& name,
                                        const std::string& kek = std::string(32, 'k')) {
    absl::StatusOr<PiiVault> vault = PiiVault::Create(kek, "kek-1");
    EXPECT_TRUE(vault.ok());
    auto kafka = kafka::SharedClients::Create(TestKafka());
    EXPECT_TRUE(kafka.ok()) << kafka.status();
    clients_.push_back(*std::move(kafka));
    auto replica = std::make_unique<PersonalText>(
        *clients_.back(), *std::move(vault),
        PersonalText::Options{prefix_ + "keys", prefix_ + "deadletter", name,
                              absl::Milliseconds(50)},
        [&closed](const std::string& user_id) { return closed(user_id); });
    EXPECT_TRUE(replica->Start().ok());
    return replica;
  }

  static absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

  std::string prefix_;
  // Outlive the replicas (declared first, destroyed last).
  std::vector<std::unique_ptr<kafka::SharedClients>> clients_;
};

TEST_F(PersonalTextKafkaTest, WordsSealedByOneReplicaOpenOnAnotherUntilTheAuthorIsDeleted) {
  Closed closed;
  std::unique_ptr<PersonalText> a = Replica(closed, "a");
  std::unique_ptr<PersonalText> b = Replica(closed, "b");
  const std::string words = "Ottoline fixes bicycles in Leipzig";

  absl::StatusOr<std::string> sealed = a->Seal("u1", words, Soon());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_FALSE(absl::StrContains(*sealed, "Ottoline")) << *sealed;
  EXPECT_TRUE(IsSealedText(*sealed));
  absl::StatusOr<std::string> empty = a->Seal("u1", "", Soon());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "") << "nothing typed, nothing sealed";

  // Another replica answering: the key comes from the topic; nested and
  // repeated strings open, plain ones stay as they are.
  runtime::v1::Reply answer;
  answer.set_message(*sealed);
  answer.set_command_id("plain text");
  answer.add_field_violations()->set_description(*sealed);
  ASSERT_TRUE(b->OpenAll(answer, Soon()).ok());
  EXPECT_EQ(answer.message(), words);
  EXPECT_EQ(answer.field_violations(0).description(), words);
  EXPECT_EQ(answer.command_id(), "plain text");

  // One key per author: B seals the same words to the same string.
  absl::StatusOr<std::string> again = b->Seal("u1", words, Soon());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *sealed);
  absl::StatusOr<std::string> other = b->Seal("u2", "Another person's words", Soon());
  ASSERT_TRUE(other.ok());

  // Deleted: no replica opens the words any more, nor seals new ones ...
  closed.Close("u1");
  absl::StatusOr<std::string> opened = b->Open(*sealed, Soon());
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "");
  EXPECT_EQ(a->Seal("u1", "more", Soon()).status().code(), absl::StatusCode::kUnauthenticated);

  // ... and the key leaves the topic: a replica started later, which does
  // not know of the deletion, finds nothing to open the words with, while
  // the other author's words still open.
  Closed nobody;
  absl::Time until = absl::Now() + absl::Seconds(30);
  std::string later_sees = words;
  while (absl::Now() < until) {
    std::unique_ptr<PersonalText> later = Replica(nobody, "later");
    absl::StatusOr<std::string> seen = later->Open(*sealed, Soon());
    ASSERT_TRUE(seen.ok()) << seen.status();
    later_sees = *seen;
    if (later_sees.empty()) {
      absl::StatusOr<std::string> kept = later->Open(*other, Soon());
      ASSERT_TRUE(kept.ok());
      EXPECT_EQ(*kept, "Another person's words");
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(later_sees, "") << "the deleted author's key is still in the topic";
}

TEST_F(PersonalTextKafkaTest, AReplicaWithTheWrongKeyEncryptionKeyFailsLoudlyAndErasesNothing) {
  Closed closed;
  std::unique_ptr<PersonalText> right = Replica(closed, "right");
  absl::StatusOr<std::string> sealed = right->Seal("u1", "Words to keep", Soon());
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  std::unique_ptr<PersonalText> wrong = Replica(closed, "wrong", std::string(32, 'w'));
  absl::StatusOr<std::string> opened = wrong->Open(*sealed, Soon());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kInternal)
      << "shown as erased instead of failing: " << (opened.ok() ? *opened : "");
  // Asked again, still an error (not remembered as erased), and the right
  // replica still opens the words.
  EXPECT_EQ(wrong->Open(*sealed, Soon()).status().code(), absl::StatusCode::kInternal);
  absl::StatusOr<std::string> kept = right->Open(*sealed, Soon());
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, "Words to keep");
  // It never serves, and writes no key of its own for that author.
  EXPECT_FALSE(wrong->CaughtUp()) << "a replica that unwraps no key says it is ready";
  EXPECT_EQ(wrong->Seal("u1", "More words", Soon()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A read model goes on, showing the words empty.
  absl::StatusOr<std::string> empty =
      wrong->Open(*sealed, Soon(), PersonalText::Unopenable::kEmpty);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(SealedText, IsTheSameForTheSameWordsAndKeyAndOpensOnlyWithThatKey) {
  const std::string key(32, 'a');
  const std::string other_key(32, 'b');
  std::string one = PiiVault::SealText("u1/k1", key, "See you then");
  EXPECT_EQ(one, PiiVault::SealText("u1/k1", key, "See you then"));
  EXPECT_NE(one, PiiVault::SealText("u1/k1", key, "See you later"));
  EXPECT_NE(one, PiiVault::SealText("u1/k2", other_key, "See you then"));

  std::optional<PiiVault::SealedString> parsed = PiiVault::ParseSealed(one);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->key_id, "u1/k1");
  absl::StatusOr<std::string> opened = PiiVault::OpenText(*parsed, key);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "See you then");
  EXPECT_FALSE(PiiVault::OpenText(*parsed, other_key).ok());
  // Bound to its key id: moved to another, it does not open.
  parsed->key_id = "u2/k1";
  EXPECT_FALSE(PiiVault::OpenText(*parsed, key).ok());

  EXPECT_FALSE(PiiVault::ParseSealed("See you then").has_value());
  EXPECT_FALSE(PiiVault::ParseSealed("hl-sealed:1:u1/k1:!!:??").has_value());
  EXPECT_FALSE(PiiVault::ParseSealed("hl-sealed:1:nokey:AA:AA").has_value());
}

}  // namespace
}  // namespace helpline::privacy
