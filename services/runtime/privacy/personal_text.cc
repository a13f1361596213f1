#include "services/runtime/privacy/personal_text.h"

#include <cstdlib>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "services/runtime/core/base64url.h"
#include "services/runtime/server/log.h"

namespace helpline::privacy {

void AddPersonalTextKeys(server::ConfigSchema& schema) {
  schema
      .Secret("personal.key_encryption_key",
              "base64url of 32 bytes: wraps the per-user keys that seal what people type "
              "(from a Secret)")
      .String("personal.key_encryption_key_id", "kek-1", "names the key-encryption key in use")
      .Duration("personal.erase_interval", absl::Seconds(5), absl::Milliseconds(10),
                absl::Minutes(10), "how often the keys of deleted accounts are looked for");
}

PersonalText::PersonalText(kafka::SharedClients& kafka, PiiVault vault, Options options,
                           std::function<bool(const std::string&)> is_closed)
    : kafka_(kafka),
      vault_(std::move(vault)),
      options_(std::move(options)),
      is_closed_(std::move(is_closed)),
      keys_(vault_),
      feed_(kafka, {options_.keys_topic, options_.deadletter_topic, options_.name},
            [] { return std::make_unique<identity::v1::DataKeyRecord>(); }, keys_) {}

std::unique_ptr<PersonalText> PersonalText::FromConfigOrExit(
    kafka::SharedClients& kafka, const server::Config& config, Options options,
    std::function<bool(const std::string&)> is_closed) {
  const std::string name = "personal.key_encryption_key";
  absl::StatusOr<std::string> kek = Base64UrlDecode(config.GetString(name));
  absl::StatusOr<PiiVault> vault =
      kek.ok() ? PiiVault::Create(*kek, config.GetString("personal.key_encryption_key_id"))
               : kek.status();
  if (!vault.ok()) {
    std::cerr << "bad config: '" << name << "' must be base64url of 32 bytes (set "
              << server::ConfigSchema::EnvironmentName(name) << ")\n";
    std::exit(2);
  }
  options.erase_interval = config.GetDuration("personal.erase_interval");
  return std::make_unique<PersonalText>(kafka, *std::move(vault), std::move(options),
                                        std::move(is_closed));
}

PersonalText::~PersonalText() { Stop(); }

absl::Status PersonalText::Start() {
  if (absl::Status started = feed_.Start(); !started.ok()) return started;
  eraser_ = std::thread([this] { EraseLoop(); });
  return absl::OkStatus();
}

void PersonalText::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (eraser_.joinable()) eraser_.join();
  feed_.Stop();
}

absl::StatusOr<std::string> PersonalText::Seal(const std::string& author, std::string_view text,
                                               absl::Time deadline) {
  if (text.empty()) return std::string();
  if (is_closed_(author)) return absl::UnauthenticatedError("this account was deleted");
  std::optional<KeyCache::Entry> key = keys_.AnyKeyOf(author);
  if (!key) {
    // Another replica may have made the author's key moments ago.
    if (!feed_.WaitUntilCurrent(deadline).ok()) {
      return absl::UnavailableError("the data keys are not read yet; try again");
    }
    absl::MutexLock making(&making_);
    key = keys_.AnyKeyOf(author);
    if (!key && keys_.HasUnusableKeyOf(author)) {
      // A new key would split the author's words over two keys, and a
      // replica with the wrong key-encryption key must not write any.
      return absl::FailedPreconditionError(
          "the author's data key does not unwrap with personal.key_encryption_key");
    }
    if (!key && absl::Now() > deadline) {
      return absl::UnavailableError("the data key could not be made in time; try again");
    }
    if (!key) {
      PiiVault::DataKey made = vault_.NewDataKey(author, absl::Now());
      kafka::Delivery stored = kafka_.producer->ProduceAndWait(
          {options_.keys_topic, std::nullopt, made.key_id, made.record.SerializeAsString(), {}});
      if (!stored.status.ok()) {
        log::Warn("could not store a data key", {{"error", stored.status.ToString()}});
        return absl::UnavailableError("could not store the data key; try again");
      }
      keys_.Remember(made.key_id, made.key);
      key = KeyCache::Entry{made.key_id, made.key};
    }
  }
  return PiiVault::SealText(key->key_id, key->key, text);
}

bool PersonalText::CaughtUp() {
  if (!feed_.CaughtUp()) return false;
  // Keys in the topic and none unwraps: the wrong key-encryption key.
  const auto [usable, unusable] = keys_.Counts();
  return usable > 0 || unusable == 0;
}

absl::StatusOr<std::optional<std::string>> PersonalText::KeyOf(const std::string& key_id,
                                                              absl::Time deadline) {
  if (is_closed_(PiiVault::UserOfKey(key_id))) return std::nullopt;
  if (std::optional<std::string> key = keys_.Key(key_id)) return key;
  auto unusable = [&] {
    return absl::InternalError(absl::StrCat(
        "data key ", key_id, " does not unwrap with the configured key-encryption key"));
  };
  if (keys_.Unusable(key_id)) return unusable();
  {
    absl::MutexLock lock(&mutex_);
    if (gone_.contains(key_id)) return std::nullopt;
  }
  // The key was in the topic before the text was sealed: once the cache
  // holds everything in the topic now, a key it lacks is erased.
  if (!feed_.WaitUntilCurrent(deadline).ok()) {
    return absl::UnavailableError("the data keys are not read yet; try again");
  }
  if (std::optional<std::string> key = keys_.Key(key_id)) return key;
  if (keys_.Unusable(key_id)) return unusable();
  absl::MutexLock lock(&mutex_);
  gone_.insert(key_id);
  return std::nullopt;
}

absl::StatusOr<std::string> PersonalText::Open(std::string_view value, absl::Time deadline,
                                               Unopenable unopenable) {
  if (!IsSealedText(value)) return std::string(value);
  std::optional<PiiVault::SealedString> sealed = PiiVault::ParseSealed(value);
  if (!sealed) return std::string();
  absl::StatusOr<std::optional<std::string>> key = KeyOf(sealed->key_id, deadline);
  if (!key.ok() && key.status().code() == absl::StatusCode::kInternal &&
      unopenable == Unopenable::kEmpty) {
    return std::string();
  }
  if (!key.ok()) return key.status();
  if (!key->has_value()) return std::string();
  absl::StatusOr<std::string> text = PiiVault::OpenText(*sealed, **key);
  if (!text.ok()) {
    log::Error("a sealed text does not open with its key",
               {{"key_id", sealed->key_id}, {"error", text.status().ToString()}});
    return std::string();
  }
  return text;
}

absl::Status PersonalText::ForEachSealed(google::protobuf::Message& message,
                                         const std::function<absl::Status(std::string&)>& visit) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
      for (int i = 0; i < count; ++i) {
        google::protobuf::Message& inner =
            field->is_repeated() ? *reflection->MutableRepeatedMessage(&message, field, i)
                                 : *reflection->MutableMessage(&message, field);
        if (absl::Status done = ForEachSealed(inner, visit); !done.ok()) return done;
      }
      continue;
    }
    if (field->type() != FieldDescriptor::TYPE_STRING) continue;
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      std::string value = field->is_repeated() ? reflection->GetRepeatedString(message, field, i)
                                                : reflection->GetString(message, field);
      if (!IsSealedText(value)) continue;
      if (absl::Status done = visit(value); !done.ok()) return done;
      if (field->is_repeated()) {
        reflection->SetRepeatedString(&message, field, i, std::move(value));
      } else {
        reflection->SetString(&message, field, std::move(value));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status PersonalText::OpenAll(google::protobuf::Message& message, absl::Time deadline,
                                   Unopenable unopenable) {
  return ForEachSealed(message, [&](std::string& value) -> absl::Status {
    absl::StatusOr<std::string> text = Open(value, deadline, unopenable);
    if (!text.ok()) return text.status();
    value = *std::move(text);
    return absl::OkStatus();
  });
}

absl::Status PersonalText::ReadKeysOf(google::protobuf::Message& message, absl::Time deadline) {
  return ForEachSealed(message, [&](std::string& value) -> absl::Status {
    std::optional<PiiVault::SealedString> sealed = PiiVault::ParseSealed(value);
    if (!sealed) return absl::OkStatus();
    absl::Status read = KeyOf(sealed->key_id, deadline).status();
    // A key that does not unwrap is read too: answers report it.
    return read.code() == absl::StatusCode::kInternal ? absl::OkStatus() : read;
  });
}

void PersonalText::EraseLoop() {
  while (!stopping_.WaitForNotificationWithTimeout(options_.erase_interval)) {
    if (feed_.CaughtUp()) EraseClosedAccounts();
  }
}

// Every replica looks; a key made while its author was being deleted is
// caught by the next look. A tombstone written twice is harmless.
void PersonalText::EraseClosedAccounts() {
  for (const std::string& user_id : keys_.Users()) {
    if (!is_closed_(user_id)) continue;
    for (const std::string& key_id : keys_.KeyIdsOf(user_id)) {
      {
        absl::MutexLock lock(&mutex_);
        if (!tombstoned_.insert(key_id).second) continue;
      }
      kafka::OutgoingRecord tombstone;
      tombstone.topic = options_.keys_topic;
      tombstone.key = key_id;
      tombstone.tombstone = true;
      kafka::Delivery erased = kafka_.producer->ProduceAndWait(tombstone);
      if (!erased.status.ok()) {
        log::Warn("could not erase a data key; trying again",
                  {{"key_id", key_id}, {"error", erased.status.ToString()}});
        absl::MutexLock lock(&mutex_);
        tombstoned_.erase(key_id);
        continue;
      }
      log::Info("erased the data key of a deleted account",
                {{"user_id", user_id}, {"key_id", key_id}, {"by", options_.name}});
    }
  }
}

}  // namespace helpline::privacy
