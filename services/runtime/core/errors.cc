#include "services/runtime/core/errors.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace helpline::errors {
namespace {

constexpr char kBadRequestUrl[] = "type.googleapis.com/google.rpc.BadRequest";
constexpr char kRetryInfoUrl[] = "type.googleapis.com/google.rpc.RetryInfo";

google::rpc::BadRequest ToBadRequest(const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest bad_request;
  for (const FieldViolation& violation : violations) {
    auto* added = bad_request.add_field_violations();
    added->set_field(violation.field);
    added->set_description(violation.description);
  }
  return bad_request;
}

}  // namespace

absl::Status InvalidFields(const std::vector<FieldViolation>& violations) {
  std::vector<std::string> parts;
  for (const FieldViolation& violation : violations) {
    parts.push_back(absl::StrCat(violation.field, ": ", violation.description));
  }
  absl::Status status = absl::InvalidArgumentError(absl::StrJoin(parts, "; "));
  status.SetPayload(kBadRequestUrl, absl::Cord(ToBadRequest(violations).SerializeAsString()));
  return status;
}

absl::Status InvalidField(const std::string& field, const std::string& description) {
  return InvalidFields({{field, description}});
}

std::vector<FieldViolation> FieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> violations;
  auto payload = status.GetPayload(kBadRequestUrl);
  if (!payload) return violations;
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) return violations;
  for (const auto& violation : bad_request.field_violations()) {
    violations.push_back({violation.field(), violation.description()});
  }
  return violations;
}

absl::Status RetryLater(const std::string& message, absl::Duration retry_after) {
  google::rpc::RetryInfo info;
  int64_t nanos = absl::ToInt64Nanoseconds(retry_after);
  info.mutable_retry_delay()->set_seconds(nanos / 1000000000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  absl::Status status = absl::ResourceExhaustedError(message);
  status.SetPayload(kRetryInfoUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryInfoUrl);
  google::rpc::RetryInfo info;
  if (!payload || !info.ParseFromString(std::string(*payload))) return std::nullopt;
  return absl::Seconds(info.retry_delay().seconds()) + absl::Nanoseconds(info.retry_delay().nanos());
}

void Validator::Check(bool ok, const std::string& field, const std::string& description) {
  if (!ok) violations_.push_back({field, description});
}

absl::Status Validator::Finish() const {
  return violations_.empty() ? absl::OkStatus() : InvalidFields(violations_);
}

void ToReply(const absl::Status& status, runtime::v1::Reply* reply) {
  reply->set_code(static_cast<int32_t>(status.code()));
  reply->set_message(std::string(status.message()));
  reply->clear_field_violations();
  for (const FieldViolation& violation : FieldViolations(status)) {
    auto* added = reply->add_field_violations();
    added->set_field(violation.field);
    added->set_description(violation.description);
  }
}

absl::Status FromReply(const runtime::v1::Reply& reply) {
  if (reply.code() == 0) return absl::OkStatus();
  absl::Status status(static_cast<absl::StatusCode>(reply.code()), reply.message());
  if (reply.field_violations_size() > 0) {
    std::vector<FieldViolation> violations;
    for (const auto& violation : reply.field_violations()) {
      violations.push_back({violation.field(), violation.description()});
    }
    status.SetPayload(kBadRequestUrl, absl::Cord(ToBadRequest(violations).SerializeAsString()));
  }
  return status;
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(status.code()));
  details.set_message(std::string(status.message()));
  std::vector<FieldViolation> violations = FieldViolations(status);
  if (!violations.empty()) details.add_details()->PackFrom(ToBadRequest(violations));
  if (auto payload = status.GetPayload(kRetryInfoUrl)) {
    google::rpc::RetryInfo info;
    if (info.ParseFromString(std::string(*payload))) details.add_details()->PackFrom(info);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      details.SerializeAsString());
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::BadRequest bad_request;
      google::rpc::RetryInfo retry_info;
      if (any.Is<google::rpc::BadRequest>() && any.UnpackTo(&bad_request)) {
        out.SetPayload(kBadRequestUrl, absl::Cord(bad_request.SerializeAsString()));
      } else if (any.Is<google::rpc::RetryInfo>() && any.UnpackTo(&retry_info)) {
        out.SetPayload(kRetryInfoUrl, absl::Cord(retry_info.SerializeAsString()));
      }
    }
  }
  return out;
}

}  // namespace helpline::errors
