#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/kafka/shared_clients.h"
#include "services/runtime/privacy/key_cache.h"
#include "services/runtime/privacy/pii_vault.h"
#include "services/runtime/server/config.h"

namespace helpline::privacy {

// personal.* keys: the key-encryption key (a Secret) and how often the keys
// of deleted accounts are looked for.
void AddPersonalTextKeys(server::ConfigSchema& schema);

// What people type into a service (a profile's name, headline and bio, a
// help request's description, a booking's note, a review) is sealed with the
// author's data key before it goes into a command, and so travels sealed
// through the commands, events and snapshots. It is opened only where the
// service needs the words: to answer a call (OpenAll) or to index them.
// When identity deletes the account, every replica stops opening the
// author's texts at once ("" instead) and one of them tombstones the
// author's keys in helpline.<service>.keys: the texts in the log are then
// unreadable for good.
class PersonalText {
 public:
  struct Options {
    std::string keys_topic;        // helpline.<service>.keys
    std::string deadletter_topic;  // for undecodable key records
    std::string name;              // "<service>.personal-keys": logs and the dead letters
    absl::Duration erase_interval = absl::Seconds(5);
  };

  // `vault` wraps the keys with the configured key-encryption key;
  // `is_closed` says whether identity deleted an account.
  PersonalText(kafka::SharedClients& kafka, PiiVault vault, Options options,
               std::function<bool(const std::string& user_id)> is_closed);
  // From personal.* config; ends the process (status 2) if the key is
  // missing or malformed.
  static std::unique_ptr<PersonalText> FromConfigOrExit(
      kafka::SharedClients& kafka, const server::Config& config, Options options,
      std::function<bool(const std::string& user_id)> is_closed);
  ~PersonalText();

  // Reads the keys topic and starts erasing the keys of deleted accounts.
  absl::Status Start();
  void Stop();
  // Has read every key that was in the topic at Start, and can unwrap them
  // (a replica with the wrong key-encryption key never serves).
  bool CaughtUp();

  // `text` sealed with `author`'s key. An author's first text makes their key
  // and writes it to the keys topic first. UNAVAILABLE if the keys cannot be
  // read or written by `deadline`; UNAUTHENTICATED for a deleted account.
  // An empty text stays empty.
  absl::StatusOr<std::string> Seal(const std::string& author, std::string_view text,
                                   absl::Time deadline);

  // Every sealed string in `message`, at any depth, replaced by its text, or
  // by "" once its author's account is deleted. UNAVAILABLE if a key not
  // read yet is still missing at `deadline`; INTERNAL if the configured
  // key-encryption key does not unwrap it.
  // What to do with words whose key does not unwrap: fail (INTERNAL), or
  // show them empty (a read model, which must go on; the key is logged).
  enum class Unopenable { kFail, kEmpty };
  absl::Status OpenAll(google::protobuf::Message& message, absl::Time deadline,
                       Unopenable unopenable = Unopenable::kFail);

  // One value: what OpenAll does to each string.
  absl::StatusOr<std::string> Open(std::string_view value, absl::Time deadline,
                                   Unopenable unopenable = Unopenable::kFail);

  // Waits until the keys of every sealed string in `message` are read (or
  // known erased), so that opening them later does not wait: a read model
  // that keeps the words sealed runs it before applying an event.
  absl::Status ReadKeysOf(google::protobuf::Message& message, absl::Time deadline);

 private:
  // The key of `key_id`; nullopt if erased (or its author deleted);
  // INTERNAL if the key-encryption key does not unwrap it.
  absl::StatusOr<std::optional<std::string>> KeyOf(const std::string& key_id,
                                                   absl::Time deadline);
  static absl::Status ForEachSealed(google::protobuf::Message& message,
                                    const std::function<absl::Status(std::string&)>& visit);
  void EraseLoop();
  void EraseClosedAccounts();

  kafka::SharedClients& kafka_;
  const PiiVault vault_;
  const Options options_;
  const std::function<bool(const std::string&)> is_closed_;
  KeyCache keys_;
  es::EventFeed feed_;

  // Serialises the making of keys in this process: one key per author.
  absl::Mutex making_;
  absl::Mutex mutex_;
  // Keys the topic did not hold after the sealed value was seen: erased and
  // compacted away.
  absl::flat_hash_set<std::string> gone_ ABSL_GUARDED_BY(mutex_);
  // Keys this replica wrote a tombstone for.
  absl::flat_hash_set<std::string> tombstoned_ ABSL_GUARDED_BY(mutex_);

  absl::Notification stopping_;
  std::thread eraser_;
};

}  // namespace helpline::privacy
