#include "services/runtime/auth/key_set.h"

#include <sodium.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace helpline::auth {

absl::StatusOr<SigningKeySet> SigningKeySet::FromJson(std::string_view text) {
  nlohmann::json document = nlohmann::json::parse(text, nullptr, false);
  if (!document.is_object() || !document.contains("keys") || !document["keys"].is_array()) {
    return absl::InvalidArgumentError("signing keys: expected {\"keys\": [...]}");
  }
  SigningKeySet set;
  int active = 0;
  std::set<std::string> kids;
  for (const nlohmann::json& entry : document["keys"]) {
    std::string kid = entry.value("kid", "");
    std::string status = entry.value("status", "");
    absl::StatusOr<std::string> seed = Base64UrlDecode(entry.value("seed", ""));
    if (kid.empty() || !kids.insert(kid).second) {
      return absl::InvalidArgumentError("signing keys: every key needs a unique \"kid\"");
    }
    if (!seed.ok() || seed->size() != crypto_sign_SEEDBYTES) {
      return absl::InvalidArgumentError(
          absl::StrCat("signing key ", kid, ": \"seed\" must be 32 bytes, base64url"));
    }
    if (status != "active" && status != "next" && status != "retired") {
      return absl::InvalidArgumentError(
          absl::StrCat("signing key ", kid, ": \"status\" must be active, next or retired"));
    }
    if (status == "active") {
      ++active;
      set.active_ = set.keys_.size();
    }
    set.keys_.push_back(Ed25519Key::FromSeed(kid, *seed));
  }
  if (active != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("signing keys: exactly one key must be active, found ", active));
  }
  return set;
}

absl::StatusOr<SigningKeySet> SigningKeySet::FromFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read signing keys from ", path));
  std::stringstream text;
  text << file.rdbuf();
  return FromJson(text.str());
}

std::string SigningKeySet::GenerateJson(
    const std::vector<std::pair<std::string, std::string>>& keys) {
  nlohmann::json document = {{"keys", nlohmann::json::array()}};
  for (const auto& [kid, status] : keys) {
    document["keys"].push_back(
        {{"kid", kid}, {"seed", Base64UrlEncode(Ed25519Key::Generate(kid).seed())}, {"status", status}});
  }
  return document.dump(2);
}

std::vector<Ed25519Key> SigningKeySet::PublicKeys() const {
  std::vector<Ed25519Key> keys;
  for (const Ed25519Key& key : keys_) {
    Ed25519Key public_only;
    public_only.kid = key.kid;
    public_only.public_key = key.public_key;
    keys.push_back(std::move(public_only));
  }
  return keys;
}

}  // namespace helpline::auth
