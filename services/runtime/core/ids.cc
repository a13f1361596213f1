#include "services/runtime/core/ids.h"

#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"

namespace helpline::ids {
namespace {

std::string Format(const std::array<uint8_t, 16>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

bool Parse(std::string_view text, std::array<uint8_t, 16>* bytes) {
  if (!IsUuid(text)) return false;
  int n = 0;
  for (size_t i = 0; i < text.size(); i += 2) {
    if (text[i] == '-') ++i;
    auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    (*bytes)[n++] = static_cast<uint8_t>(nibble(text[i]) << 4 | nibble(text[i + 1]));
  }
  return true;
}

}  // namespace

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = text[i];
    if (dash != (c == '-')) return false;
    if (!dash && !((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))) return false;
  }
  return true;
}

namespace {

std::string UuidV7(uint64_t millis, uint64_t random_high, uint64_t random_low) {
  std::array<uint8_t, 16> bytes;
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<uint8_t>(millis >> (40 - 8 * i));
  for (int i = 6; i < 8; ++i) bytes[i] = static_cast<uint8_t>(random_high >> (8 * i));
  for (int i = 8; i < 16; ++i) bytes[i] = static_cast<uint8_t>(random_low >> (8 * (i - 8)));
  bytes[6] = (bytes[6] & 0x0f) | 0x70;  // version 7
  bytes[8] = (bytes[8] & 0x3f) | 0x80;  // variant 10
  return Format(bytes);
}

}  // namespace

std::string NewUuidV7() {
  static std::mutex mutex;
  static std::mt19937_64 generator{std::random_device{}()};
  uint64_t random_high, random_low;
  {
    std::lock_guard<std::mutex> lock(mutex);
    random_high = generator();
    random_low = generator();
  }
  uint64_t millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  return UuidV7(millis, random_high, random_low);
}

std::string EventUuidV7(int64_t unix_millis, std::string_view writer, std::string_view aggregate_id,
                        int64_t version) {
  std::string input = absl::StrCat(std::string(kHelplineNamespace), "\nevent\n", std::string(writer),
                                   "\n", std::string(aggregate_id), "\n", version);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha1(), nullptr);
  uint64_t high = 0, low = 0;
  for (int i = 0; i < 8; ++i) {
    high = high << 8 | digest[i];
    low = low << 8 | digest[8 + i];
  }
  return UuidV7(static_cast<uint64_t>(std::max<int64_t>(0, unix_millis)), high, low);
}

std::string UuidV5(std::string_view namespace_uuid, std::string_view name) {
  std::array<uint8_t, 16> space{};
  Parse(namespace_uuid, &space);
  std::string input(reinterpret_cast<const char*>(space.data()), space.size());
  input.append(name);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha1(), nullptr);
  std::array<uint8_t, 16> bytes;
  std::copy(digest, digest + 16, bytes.begin());
  bytes[6] = (bytes[6] & 0x0f) | 0x50;  // version 5
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return Format(bytes);
}

std::string CommandId(std::string_view caller, std::string_view request_id) {
  return UuidV5(kHelplineNamespace, absl::StrCat(std::string(caller), "\n", std::string(request_id)));
}

std::string DerivedCommandId(std::string_view source_id, std::string_view discriminator) {
  return UuidV5(kHelplineNamespace,
                absl::StrCat(std::string(source_id), "\n", std::string(discriminator)));
}

}  // namespace helpline::ids
