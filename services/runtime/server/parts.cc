#include "services/runtime/server/parts.h"

#include "absl/strings/str_cat.h"
#include "services/runtime/server/log.h"

namespace helpline::server {

absl::Status Parts::StartAll() {
  for (; started_ < parts_.size(); ++started_) {
    const Part& part = parts_[started_];
    if (absl::Status started = part.start(); !started.ok()) {
      log::Error(absl::StrCat("cannot start: ", part.name), {{"error", started.ToString()}});
      StopAll();
      return started;
    }
  }
  return absl::OkStatus();
}

void Parts::StopAll() {
  while (started_ > 0) {
    const Part& part = parts_[--started_];
    if (part.stop) part.stop();
  }
}

bool Parts::Ready() const {
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (i >= started_ || (parts_[i].ready && !parts_[i].ready())) return false;
  }
  return true;
}

}  // namespace helpline::server
