#include "services/sessions/domain/read_model.h"

#include <algorithm>

#include "services/runtime/core/proto_time.h"
#include "services/sessions/domain/sessions_domain.h"

namespace helpline::sessions {
namespace {

constexpr size_t kMaxSessionsOver = 10'000;

}  // namespace

void SessionsReadModel::Apply(const v1::SessionsEvent& event) {
  absl::MutexLock lock(&mutex_);
  auto [it, added] = sessions_.try_emplace(event.meta().aggregate_id());
  const v1::SessionStatus before = it->second.session().status();
  SessionsDomain::Apply(it->second, event);
  const v1::Session& session = it->second.session();
  if (session.status() != before) {
    if (!SessionIsOver(before) && before != v1::SESSION_STATUS_UNSPECIFIED) --open_by_status_[before];
    if (!SessionIsOver(session.status()) && session.status() != v1::SESSION_STATUS_UNSPECIFIED) {
      ++open_by_status_[session.status()];
    }
  }
  if (event.has_session_ended() || event.has_session_no_show() || event.has_session_cancelled()) {
    running_media_.erase(session.session_id());
    over_.push_back(session.session_id());
    if (over_.size() > kMaxSessionsOver) over_.pop_front();
  } else if (!SessionIsOver(session.status()) &&
             session.connection_source() == v1::CONNECTION_SOURCE_MEDIA_SERVER) {
    running_media_.insert(session.session_id());
  }
  if (event.has_session_created()) {
    for (const std::string& user :
         {event.session_created().person_id(), event.session_created().expert_id()}) {
      sessions_of_[user].push_back(event.meta().aggregate_id());
    }
  }
}

std::map<v1::SessionStatus, int64_t> SessionsReadModel::OpenByStatus() const {
  absl::ReaderMutexLock lock(&mutex_);
  return open_by_status_;
}

std::vector<v1::Session> SessionsReadModel::RunningMediaSessions() const {
  absl::ReaderMutexLock lock(&mutex_);
  std::vector<v1::Session> running;
  for (const std::string& id : running_media_) running.push_back(sessions_.at(id).session());
  return running;
}

std::vector<std::string> SessionsReadModel::TakeSessionsOver() {
  absl::MutexLock lock(&mutex_);
  std::vector<std::string> over(over_.begin(), over_.end());
  over_.clear();
  return over;
}

std::optional<v1::Session> SessionsReadModel::Session(const std::string& session_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  auto found = sessions_.find(session_id);
  if (found == sessions_.end() || found->second.session().session_id().empty()) {
    return std::nullopt;
  }
  return found->second.session();
}

std::vector<v1::Session> SessionsReadModel::SessionsOf(
    const std::string& user_id, std::optional<std::pair<absl::Time, std::string>> after,
    size_t limit) const {
  std::vector<v1::Session> all;
  {
    absl::ReaderMutexLock lock(&mutex_);
    auto ids = sessions_of_.find(user_id);
    if (ids == sessions_of_.end()) return all;
    for (const std::string& id : ids->second) all.push_back(sessions_.at(id).session());
  }
  auto key = [](const v1::Session& session) {
    return std::make_pair(FromProtoTime(session.created_at()), session.session_id());
  };
  std::sort(all.begin(), all.end(),
            [&](const v1::Session& a, const v1::Session& b) { return key(a) > key(b); });
  std::vector<v1::Session> page;
  for (v1::Session& session : all) {
    if (after && key(session) >= *after) continue;
    if (page.size() == limit) break;
    page.push_back(std::move(session));
  }
  return page;
}

}  // namespace helpline::sessions
