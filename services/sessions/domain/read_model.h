#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/sessions/v1/events.pb.h"
#include "helpline/sessions/v1/state.pb.h"
#include "services/runtime/eventsourcing/projection.h"

namespace helpline::sessions {

// Sessions' read model: every session as its participants see it, and each
// user's sessions newest first. Thread-safe.
class SessionsReadModel : public es::TypedProjection<v1::SessionsEvent> {
 public:
  void Apply(const v1::SessionsEvent& event) override;

  std::optional<v1::Session> Session(const std::string& session_id) const;
  // `user_id`'s sessions (as person or expert), newest first, after the
  // session (created_at, id) `after` if given, at most `limit`.
  std::vector<v1::Session> SessionsOf(const std::string& user_id,
                                      std::optional<std::pair<absl::Time, std::string>> after,
                                      size_t limit) const;
  // Sessions not over yet, by status (created, waiting, live, reconnecting).
  std::map<v1::SessionStatus, int64_t> OpenByStatus() const;
  // Sessions not over yet whose connections the media server reports.
  std::vector<v1::Session> RunningMediaSessions() const;
  // The sessions that ended, were cancelled or were no-shows since the last
  // call (the newest 10,000 at most: their rooms are to be closed).
  std::vector<std::string> TakeSessionsOver();

 private:
  mutable absl::Mutex mutex_;
  // The same state the processor folds, per session.
  absl::flat_hash_map<std::string, v1::SessionState> sessions_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, std::vector<std::string>> sessions_of_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<std::string> running_media_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::string> over_ ABSL_GUARDED_BY(mutex_);
  std::map<v1::SessionStatus, int64_t> open_by_status_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::sessions
