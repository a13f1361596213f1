#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace helpline::server {

// Open streams counted per caller and in all, so that no caller holds more
// than its share of a server's streams.
class StreamSlots {
 public:
  StreamSlots(int per_caller, int total) : per_caller_(per_caller), total_(total) {}

  // An open stream's place; given back when it goes.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : slots_(other.slots_), caller_(std::move(other.caller_)) {
      other.slots_ = nullptr;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class StreamSlots;
    Slot(StreamSlots* slots, std::string caller) : slots_(slots), caller_(std::move(caller)) {}
    StreamSlots* slots_;
    std::string caller_;
  };

  // RESOURCE_EXHAUSTED (with RetryInfo) when the caller has per_caller
  // streams open already, or the server total.
  absl::StatusOr<Slot> Take(const std::string& caller);
  int open() const;

 private:
  void Give(const std::string& caller);

  const int per_caller_;
  const int total_;
  mutable absl::Mutex mutex_;
  int open_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::flat_hash_map<std::string, int> by_caller_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::server
