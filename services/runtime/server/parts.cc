#include "services/runtime/server/parts.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/server/log.h"

namespace helpline::server {

absl::Status Parts::StartAll() {
  for (size_t next = started_.load(); next < parts_.size(); next = started_.load()) {
    const Part& part = parts_[next];
    if (absl::Status started = part.start(); !started.ok()) {
      log::Error(absl::StrCat("cannot start: ", part.name), {{"error", started.ToString()}});
      StopAll();
      return started;
    }
    started_.store(next + 1);
  }
  return absl::OkStatus();
}

void Parts::StopAll() {
  for (size_t started = started_.load(); started > 0; started = started_.load()) {
    started_.store(started - 1);
    const Part& part = parts_[started - 1];
    if (part.stop) part.stop();
  }
}

bool Parts::Ready() const {
  const size_t started = started_.load();
  if (started < parts_.size()) return false;
  for (const Part& part : parts_) {
    if (part.ready && !part.ready()) return false;
  }
  return true;
}

std::vector<std::string> Parts::NotReady() const {
  const size_t started = started_.load();
  std::vector<std::string> waiting;
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (i >= started || (parts_[i].ready && !parts_[i].ready())) waiting.push_back(parts_[i].name);
  }
  return waiting;
}

}  // namespace helpline::server
