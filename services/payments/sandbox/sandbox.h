#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "helpline/payments/v1/processor.pb.h"

namespace helpline::payments {

// The sandbox payment processor: every operation is journaled (one JSON
// line, fsync'd) before it is answered, so a restart keeps what it did and
// the same idempotency key always gets the first answer. Captures need an
// approved authorisation and stay within it; refunds within the capture.
class SandboxProcessor {
 public:
  // Loads the journal at `journal_path` (created if missing).
  static absl::StatusOr<std::unique_ptr<SandboxProcessor>> Open(std::string journal_path);

  // The answer, and how long to wait before giving it (a scripted delay).
  struct Answer {
    v1::ExecuteResponse response;
    absl::Duration delay;
  };
  absl::StatusOr<Answer> Execute(const v1::ExecuteRequest& request, absl::Time now);
  std::vector<v1::JournalEntry> Journal() const;
  // Entries from `page_token` ("" or the last page's next_page_token), at
  // most `page_size` (0: 1000); INVALID_ARGUMENT for a bad size or token.
  absl::StatusOr<v1::ListJournalResponse> JournalPage(int32_t page_size,
                                                      const std::string& page_token) const;
  void Script(const v1::ScriptRequest& request);

 private:
  explicit SandboxProcessor(std::string journal_path) : journal_path_(std::move(journal_path)) {}
  absl::Status Append(const v1::JournalEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Why the processor itself refuses (nothing to capture ...), or "".
  std::string Refusal(const v1::ExecuteRequest& request) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);

  const std::string journal_path_;
  mutable absl::Mutex mutex_;
  std::vector<v1::JournalEntry> journal_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, size_t> by_key_ ABSL_GUARDED_BY(mutex_);
  std::vector<v1::ScriptRule> rules_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace helpline::payments
