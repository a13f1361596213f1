#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "helpline/runtime/v1/envelope.pb.h"

// Errors the way Helpline's clients see them: a gRPC status whose details
// carry a google.rpc.Status, with google.rpc.BadRequest field violations for
// bad input. Inside the services they are absl::Status values with the
// violations attached as a payload, so domain code needs no gRPC.
namespace helpline::errors {

struct FieldViolation {
  std::string field;        // proto field path: "price.amount_minor"
  std::string description;  // what is wrong and what would be right
  bool operator==(const FieldViolation&) const = default;
};

// INVALID_ARGUMENT naming the field(s).
absl::Status InvalidField(const std::string& field, const std::string& description);
absl::Status InvalidFields(const std::vector<FieldViolation>& violations);

std::vector<FieldViolation> FieldViolations(const absl::Status& status);

// RESOURCE_EXHAUSTED with google.rpc.RetryInfo: when the caller may try again.
absl::Status RetryLater(const std::string& message, absl::Duration retry_after);
// The RetryInfo delay of a status, if it has one.
std::optional<absl::Duration> RetryAfter(const absl::Status& status);

// Collects violations while a request is validated field by field.
class Validator {
 public:
  void Check(bool ok, const std::string& field, const std::string& description);
  void Add(const std::string& field, const std::string& description) { Check(false, field, description); }
  bool ok() const { return violations_.empty(); }
  // OK, or INVALID_ARGUMENT with every violation found.
  absl::Status Finish() const;

 private:
  std::vector<FieldViolation> violations_;
};

// To and from the processor's Reply.
void ToReply(const absl::Status& status, runtime::v1::Reply* reply);
absl::Status FromReply(const runtime::v1::Reply& reply);

// For a gRPC handler's return value: code, message and google.rpc.Status
// details (with BadRequest when there are field violations).
grpc::Status ToGrpc(const absl::Status& status);
// The inverse, for clients and tests.
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace helpline::errors
