#include "services/runtime/server/stream_slots.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/runtime/core/errors.h"

namespace helpline::server {

StreamSlots::Slot::~Slot() {
  if (slots_ != nullptr) slots_->Give(caller_);
}

absl::StatusOr<StreamSlots::Slot> StreamSlots::Take(const std::string& caller) {
  absl::MutexLock lock(&mutex_);
  auto found = by_caller_.find(caller);
  if (found != by_caller_.end() && found->second >= per_caller_) {
    return errors::RetryLater(
        absl::StrCat("you have ", per_caller_, " streams open here already: close one first"),
        absl::Seconds(10));
  }
  if (open_ >= total_) {
    return errors::RetryLater("this server has all the streams it can hold open; try again soon",
                              absl::Seconds(5));
  }
  ++by_caller_[caller];
  ++open_;
  return Slot(this, caller);
}

int StreamSlots::open() const {
  absl::MutexLock lock(&mutex_);
  return open_;
}

void StreamSlots::Give(const std::string& caller) {
  absl::MutexLock lock(&mutex_);
  --open_;
  auto found = by_caller_.find(caller);
  if (found != by_caller_.end() && --found->second <= 0) by_caller_.erase(found);
}

}  // namespace helpline::server
