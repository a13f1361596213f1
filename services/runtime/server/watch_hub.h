#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/server_callback.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/stream_slots.h"

namespace helpline::server {

// Server streams that send a view whenever it changes, without a thread
// each: gRPC's callback API holds the open streams, and whatever applies a
// change calls Changed with the keys it touched ("request/<id>"); the hub's
// one thread then has only the streams watching one of those keys look
// again. The same thread ends streams at their deadline, has streams that
// have shown nothing yet look again every second, and Close ends them all
// (UNAVAILABLE: the server is stopping, clients reconnect elsewhere).
class WatchHub {
 public:
  // A stream as the hub sees it. The hub calls these without holding its
  // lock; a stream may call SetKeys from them.
  class Watcher {
   public:
    virtual ~Watcher() = default;
    virtual void LookAgain() = 0;
    // Every second: a stream that has shown nothing yet looks again.
    virtual void Tick() = 0;
    virtual void End(const grpc::Status& status) = 0;
  };

  WatchHub();
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // The keys a change touched; returns at once.
  void Changed(const std::vector<std::string>& keys);
  // Ends every stream with UNAVAILABLE and refuses new ones.
  void Close();

  // For streams (see WatchStream). Remove waits for a call to the watcher
  // in progress.
  bool Add(Watcher* watcher, const std::vector<std::string>& keys, absl::Time end);
  void SetKeys(Watcher* watcher, const std::vector<std::string>& keys);
  // The stream sent its first view: no more ticks for it.
  void Shown(Watcher* watcher);
  void Remove(Watcher* watcher);

 private:
  struct Entry {
    std::vector<std::string> keys;
    absl::Time end;
    bool shown = false;
    int busy = 0;  // calls in progress
  };
  void Run();
  void Index(Watcher* watcher, const std::vector<std::string>& keys, bool add)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Marks the watchers busy, so that Remove waits for a call to them.
  void Pin(const std::vector<Watcher*>& watchers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Calls `call` on each pinned watcher, unpinning each right after.
  void CallEach(const std::vector<Watcher*>& watchers, void (*call)(Watcher*))
      ABSL_LOCKS_EXCLUDED(mutex_);

  absl::Mutex mutex_;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  absl::flat_hash_set<std::string> pending_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<Watcher*, Entry> watchers_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<Watcher*>> by_key_ ABSL_GUARDED_BY(mutex_);
  std::thread thread_;
};

// A view, the keys whose changes may change it, and whether it is the last
// (the stream ends after sending it).
template <class Response>
struct WatchView {
  Response message;
  std::vector<std::string> keys;
  bool last = false;
};

// One server stream on the hub: sends the first view, then each view that
// differs from the one sent before, until the view is the last, its
// deadline, the client going away or the hub closing. `look` returns the
// view now, nullopt while there is nothing to show yet (it is asked again
// every second), or an error that ends the stream. Open returns the reactor
// for a callback method; Refused one that ends with `status` at once.
template <class Response>
class WatchStream final : public grpc::ServerWriteReactor<Response>, private WatchHub::Watcher {
 public:
  using Look = std::function<absl::StatusOr<std::optional<WatchView<Response>>>()>;

  static grpc::ServerWriteReactor<Response>* Open(WatchHub& hub, std::vector<std::string> keys,
                                                  absl::Time end, Look look,
                                                  StreamSlots::Slot slot) {
    auto* stream = new WatchStream(hub, std::move(look), std::move(slot), keys);
    absl::MutexLock lock(&stream->mutex_);
    if (!hub.Add(stream, keys, end)) {
      stream->FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "the server is stopping; watch again on another"));
      return stream;
    }
    stream->Send();
    return stream;
  }

  static grpc::ServerWriteReactor<Response>* Refused(const grpc::Status& status) {
    class Ended final : public grpc::ServerWriteReactor<Response> {
     public:
      explicit Ended(const grpc::Status& status) { this->Finish(status); }
      void OnDone() override { delete this; }
    };
    return new Ended(status);
  }

 private:
  WatchStream(WatchHub& hub, Look look, StreamSlots::Slot slot, std::vector<std::string> keys)
      : hub_(hub), look_(std::move(look)), slot_(std::move(slot)), keys_(std::move(keys)) {}

  void LookAgain() override {
    absl::MutexLock lock(&mutex_);
    Send();
  }
  void Tick() override {
    absl::MutexLock lock(&mutex_);
    if (!sent_.has_value()) Send();
  }
  void End(const grpc::Status& status) override {
    absl::MutexLock lock(&mutex_);
    FinishOnce(status);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mutex_);
    writing_ = false;
    if (finish_wanted_.has_value()) return FinishOnce(*finish_wanted_);
    if (!ok) return FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    if (last_sent_) return FinishOnce(grpc::Status::OK);
    if (stale_) Send();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mutex_);
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }
  void OnDone() override {
    hub_.Remove(this);  // waits for a call from the hub in progress
    delete this;
  }

  // Sends the view if it changed; while a write is in flight, only notes
  // that the view may have.
  void Send() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (finished_ || finish_wanted_.has_value()) return;
    if (writing_) {
      stale_ = true;
      return;
    }
    stale_ = false;
    absl::StatusOr<std::optional<WatchView<Response>>> view = LookNow();
    // New keys are watched before the view is taken that is sent: a change
    // under them in between is not missed.
    for (int i = 0; i < 3 && view.ok() && view->has_value() && (*view)->keys != keys_; ++i) {
      keys_ = (*view)->keys;
      hub_.SetKeys(this, keys_);
      view = LookNow();
    }
    if (!view.ok()) return FinishOnce(errors::ToGrpc(view.status()));
    if (!view->has_value()) return;
    WatchView<Response>& now = **view;
    if (!sent_.has_value()) hub_.Shown(this);
    std::string bytes = now.message.SerializeAsString();
    if (sent_.has_value() && bytes == *sent_) {
      if (now.last) FinishOnce(grpc::Status::OK);
      return;
    }
    sent_ = std::move(bytes);
    pending_ = std::move(now.message);
    last_sent_ = now.last;
    writing_ = true;
    this->StartWrite(&pending_);
  }
  absl::StatusOr<std::optional<WatchView<Response>>> LookNow() {
    try {
      return look_();
    } catch (const std::exception& e) {
      log::Error("watch stream failed", {{"error", e.what()}});
      return absl::InternalError("internal error");
    }
  }
  // Finishes now, or once the write in flight is done.
  void FinishOnce(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (finished_) return;
    if (writing_) {
      if (!finish_wanted_.has_value()) finish_wanted_ = status;
      return;
    }
    finished_ = true;
    this->Finish(status);
  }

  WatchHub& hub_;
  const Look look_;
  StreamSlots::Slot slot_;
  absl::Mutex mutex_;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mutex_);
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool stale_ ABSL_GUARDED_BY(mutex_) = false;
  bool last_sent_ ABSL_GUARDED_BY(mutex_) = false;
  std::optional<grpc::Status> finish_wanted_ ABSL_GUARDED_BY(mutex_);
  std::optional<std::string> sent_ ABSL_GUARDED_BY(mutex_);
  Response pending_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::server
