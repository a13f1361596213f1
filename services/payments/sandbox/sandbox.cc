#include "services/payments/sandbox/sandbox.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::payments {

absl::StatusOr<std::unique_ptr<SandboxProcessor>> SandboxProcessor::Open(std::string journal_path) {
  std::unique_ptr<SandboxProcessor> processor(new SandboxProcessor(std::move(journal_path)));
  std::ifstream in(processor->journal_path_);
  std::string line;
  absl::MutexLock lock(&processor->mutex_);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    v1::JournalEntry entry;
    // A torn last line (a crash mid-write) was never answered: drop it.
    if (!google::protobuf::util::JsonStringToMessage(line, &entry).ok()) continue;
    processor->by_key_[entry.idempotency_key()] = processor->journal_.size();
    processor->journal_.push_back(std::move(entry));
  }
  return processor;
}

absl::Status SandboxProcessor::Append(const v1::JournalEntry& entry) {
  std::string line;
  if (!google::protobuf::util::MessageToJsonString(entry, &line).ok()) {
    return absl::InternalError("cannot encode a journal entry");
  }
  line += "\n";
  int fd = open(journal_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", journal_path_));
  bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::UnavailableError(absl::StrCat("cannot write ", journal_path_));
  return absl::OkStatus();
}

std::string SandboxProcessor::Refusal(const v1::ExecuteRequest& request) const {
  if (request.amount().amount_minor() <= 0 && request.kind() != v1::INTENT_KIND_VOID) {
    return "the amount must be positive";
  }
  if (request.kind() != v1::INTENT_KIND_CAPTURE && request.kind() != v1::INTENT_KIND_VOID &&
      request.kind() != v1::INTENT_KIND_REFUND) {
    return "";
  }
  auto authorisation = by_key_.find(request.authorisation_key());
  if (authorisation == by_key_.end() || !journal_[authorisation->second].approved()) {
    return "no approved authorisation";
  }
  int64_t authorised = journal_[authorisation->second].amount().amount_minor();
  int64_t captured = 0;
  int64_t refunded = 0;
  bool voided = false;
  for (const v1::JournalEntry& entry : journal_) {
    if (!entry.approved() || entry.authorisation_key() != request.authorisation_key()) continue;
    if (entry.kind() == v1::INTENT_KIND_CAPTURE) captured += entry.amount().amount_minor();
    if (entry.kind() == v1::INTENT_KIND_REFUND) refunded += entry.amount().amount_minor();
    if (entry.kind() == v1::INTENT_KIND_VOID) voided = true;
  }
  switch (request.kind()) {
    case v1::INTENT_KIND_CAPTURE:
      if (voided) return "the authorisation was voided";
      if (captured + request.amount().amount_minor() > authorised) return "more than authorised";
      return "";
    case v1::INTENT_KIND_VOID:
      return captured > 0 ? "captured already" : "";
    default:
      return refunded + request.amount().amount_minor() > captured ? "more than captured" : "";
  }
}

absl::StatusOr<SandboxProcessor::Answer> SandboxProcessor::Execute(
    const v1::ExecuteRequest& request, absl::Time now) {
  if (request.idempotency_key().empty()) {
    return absl::InvalidArgumentError("idempotency_key is required");
  }
  absl::MutexLock lock(&mutex_);
  Answer answer;
  if (auto found = by_key_.find(request.idempotency_key()); found != by_key_.end()) {
    const v1::JournalEntry& entry = journal_[found->second];
    answer.response.set_approved(entry.approved());
    answer.response.set_processor_reference(entry.processor_reference());
    answer.response.set_decline_reason(entry.decline_reason());
    answer.response.set_replayed(true);
    return answer;
  }
  std::string decline = Refusal(request);
  for (auto rule = rules_.begin(); rule != rules_.end(); ++rule) {
    if ((rule->kind() != v1::INTENT_KIND_UNSPECIFIED && rule->kind() != request.kind()) ||
        !absl::StrContains(request.reference(), rule->reference_contains())) {
      continue;
    }
    if (decline.empty()) decline = rule->decline_reason();
    answer.delay = FromProtoDuration(rule->delay());
    if (rule->times() > 0 && rule->times() - 1 == 0) {
      rules_.erase(rule);
    } else if (rule->times() > 0) {
      rule->set_times(rule->times() - 1);
    }
    break;
  }
  v1::JournalEntry entry;
  entry.set_idempotency_key(request.idempotency_key());
  entry.set_kind(request.kind());
  *entry.mutable_amount() = request.amount();
  entry.set_reference(request.reference());
  entry.set_authorisation_key(request.authorisation_key());
  entry.set_approved(decline.empty());
  entry.set_processor_reference(absl::StrCat("psp_", ids::NewUuidV7()));
  entry.set_decline_reason(decline);
  *entry.mutable_at() = ToProtoTime(now);
  if (absl::Status written = Append(entry); !written.ok()) return written;
  by_key_[entry.idempotency_key()] = journal_.size();
  journal_.push_back(entry);
  answer.response.set_approved(entry.approved());
  answer.response.set_processor_reference(entry.processor_reference());
  answer.response.set_decline_reason(decline);
  return answer;
}

std::vector<v1::JournalEntry> SandboxProcessor::Journal() const {
  absl::MutexLock lock(&mutex_);
  return journal_;
}

absl::StatusOr<v1::ListJournalResponse> SandboxProcessor::JournalPage(
    int32_t page_size, const std::string& page_token) const {
  if (page_size < 0 || page_size > 10000) {
    return errors::InvalidField("page_size", "must be 0 to 10000");
  }
  size_t from = 0;
  if (!page_token.empty() && !absl::SimpleAtoi(page_token, &from)) {
    return errors::InvalidField("page_token", "is not a token this journal gave");
  }
  const size_t size = page_size == 0 ? 1000 : static_cast<size_t>(page_size);
  absl::MutexLock lock(&mutex_);
  if (from > journal_.size()) {
    return errors::InvalidField("page_token", "is past the end of the journal");
  }
  v1::ListJournalResponse page;
  const size_t to = std::min(journal_.size(), from + size);
  for (size_t i = from; i < to; ++i) *page.add_entries() = journal_[i];
  if (to < journal_.size()) page.set_next_page_token(absl::StrCat(to));
  return page;
}

void SandboxProcessor::Script(const v1::ScriptRequest& request) {
  absl::MutexLock lock(&mutex_);
  if (request.replace()) rules_.clear();
  for (const v1::ScriptRule& rule : request.rules()) rules_.push_back(rule);
}

}  // namespace helpline::payments
