#include "services/runtime/kafka/producer.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace helpline::kafka {
namespace {

constexpr char kFencedPayload[] = "helpline.kafka/fenced";
constexpr char kLostMembershipPayload[] = "helpline.kafka/lost-group-membership";

}  // namespace

bool IsFenced(const absl::Status& status) {
  return status.GetPayload(kFencedPayload).has_value();
}

bool LostGroupMembership(const absl::Status& status) {
  return status.GetPayload(kLostMembershipPayload).has_value();
}

absl::Status FencedError(absl::string_view message) {
  absl::Status status = absl::FailedPreconditionError(absl::StrCat("fatal: ", message));
  status.SetPayload(kFencedPayload, absl::Cord("1"));
  return status;
}

absl::Status LostGroupMembershipError(absl::string_view message) {
  absl::Status status = absl::AbortedError(message);
  status.SetPayload(kLostMembershipPayload, absl::Cord("1"));
  return status;
}

}  // namespace helpline::kafka
