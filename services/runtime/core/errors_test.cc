#include "services/runtime/core/errors.h"

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace helpline::errors {
namespace {

using ::testing::ElementsAre;

TEST(ErrorsTest, ValidatorCollectsEveryViolation) {
  Validator validator;
  validator.Check(true, "name", "is required");
  validator.Check(false, "price.amount_minor", "must be positive");
  validator.Add("price.currency_code", "must be an ISO 4217 code");
  absl::Status status = validator.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(FieldViolations(status),
              ElementsAre(FieldViolation{"price.amount_minor", "must be positive"},
                          FieldViolation{"price.currency_code", "must be an ISO 4217 code"}));
  EXPECT_TRUE(Validator().Finish().ok());
}

TEST(ErrorsTest, GrpcStatusCarriesBadRequestDetails) {
  grpc::Status status = ToGrpc(InvalidField("price.amount_minor", "must be positive"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), 3);
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad_request));
  EXPECT_EQ(bad_request.field_violations(0).field(), "price.amount_minor");

  absl::Status back = FromGrpc(status);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(FieldViolations(back), ElementsAre(FieldViolation{"price.amount_minor", "must be positive"}));
}

TEST(ErrorsTest, ReplyRoundTrip) {
  runtime::v1::Reply reply;
  ToReply(InvalidField("body", "is required"), &reply);
  EXPECT_EQ(reply.code(), 3);
  absl::Status status = FromReply(reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(FieldViolations(status), ElementsAre(FieldViolation{"body", "is required"}));

  ToReply(absl::AbortedError("stale"), &reply);
  EXPECT_EQ(reply.field_violations_size(), 0);
  EXPECT_EQ(FromReply(reply), absl::AbortedError("stale"));
  ToReply(absl::OkStatus(), &reply);
  EXPECT_TRUE(FromReply(reply).ok());
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace helpline::errors
