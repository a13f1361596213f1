#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/catalog/v1/commands.pb.h"
#include "services/catalog/domain/read_model.h"
#include "services/catalog/domain/validation.h"
#include "services/runtime/auth/call_guard.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/closed_accounts.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/privacy/personal_text.h"

namespace helpline::catalog {

struct CatalogOptions {
  // The deployment's ISO 4217 currency: every price is in it.
  std::string currency = "EUR";
  // How long a write waits for the processor and the read model.
  absl::Duration command_timeout = absl::Seconds(10);
};

// What the gRPC glue works with; all owned by main.
struct CatalogParts {
  es::Front& front;
  CatalogReadModel& read_model;
  auth::CallGuard& guard;
  const Clock& clock;
  privacy::PersonalText& personal;
  // A deleted expert's profile is not shown while its erasure is on its way.
  es::ClosedAccounts& closed_accounts;
};

// The CatalogService API: who may do what, request validation, and the
// commands it sends to catalog's processor. Queries come from the read model.
// SearchExperts, the hot path, is served as bytes (its hits are mostly
// copied from bytes the index keeps) through gRPC's callback API.
class CatalogService final
    : public v1::CatalogService::WithRawCallbackMethod_SearchExperts<v1::CatalogService::Service> {
 public:
  CatalogService(CatalogOptions options, CatalogParts parts);

  grpc::Status CreateProfile(grpc::ServerContext* context, const v1::CreateProfileRequest* request,
                             v1::CreateProfileResponse* response) override;
  grpc::Status UpdateProfile(grpc::ServerContext* context, const v1::UpdateProfileRequest* request,
                             v1::UpdateProfileResponse* response) override;
  grpc::Status SubmitProfile(grpc::ServerContext* context, const v1::SubmitProfileRequest* request,
                             v1::SubmitProfileResponse* response) override;
  grpc::Status ApproveProfile(grpc::ServerContext* context,
                              const v1::ApproveProfileRequest* request,
                              v1::ApproveProfileResponse* response) override;
  grpc::Status RejectProfile(grpc::ServerContext* context, const v1::RejectProfileRequest* request,
                             v1::RejectProfileResponse* response) override;
  grpc::Status PublishProfile(grpc::ServerContext* context,
                              const v1::PublishProfileRequest* request,
                              v1::PublishProfileResponse* response) override;
  grpc::Status UnpublishProfile(grpc::ServerContext* context,
                                const v1::UnpublishProfileRequest* request,
                                v1::UnpublishProfileResponse* response) override;
  grpc::Status GetExpert(grpc::ServerContext* context, const v1::GetExpertRequest* request,
                         v1::GetExpertResponse* response) override;
  grpc::Status ListReviewQueue(grpc::ServerContext* context,
                               const v1::ListReviewQueueRequest* request,
                               v1::ListReviewQueueResponse* response) override;
  grpc::ServerUnaryReactor* SearchExperts(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  grpc::Status ListCategories(grpc::ServerContext* context,
                              const v1::ListCategoriesRequest* request,
                              v1::ListCategoriesResponse* response) override;
  grpc::Status CreateCategory(grpc::ServerContext* context,
                              const v1::CreateCategoryRequest* request,
                              v1::CreateCategoryResponse* response) override;
  grpc::Status RenameCategory(grpc::ServerContext* context,
                              const v1::RenameCategoryRequest* request,
                              v1::RenameCategoryResponse* response) override;
  grpc::Status MoveCategory(grpc::ServerContext* context, const v1::MoveCategoryRequest* request,
                            v1::MoveCategoryResponse* response) override;
  grpc::Status RetireCategory(grpc::ServerContext* context,
                              const v1::RetireCategoryRequest* request,
                              v1::RetireCategoryResponse* response) override;
  grpc::Status CreateSponsorProgram(grpc::ServerContext* context,
                                    const v1::CreateSponsorProgramRequest* request,
                                    v1::CreateSponsorProgramResponse* response) override;
  grpc::Status UpdateSponsorProgram(grpc::ServerContext* context,
                                    const v1::UpdateSponsorProgramRequest* request,
                                    v1::UpdateSponsorProgramResponse* response) override;
  grpc::Status PauseSponsorProgram(grpc::ServerContext* context,
                                   const v1::PauseSponsorProgramRequest* request,
                                   v1::PauseSponsorProgramResponse* response) override;
  grpc::Status ResumeSponsorProgram(grpc::ServerContext* context,
                                    const v1::ResumeSponsorProgramRequest* request,
                                    v1::ResumeSponsorProgramResponse* response) override;
  grpc::Status GetSponsorProgram(grpc::ServerContext* context,
                                 const v1::GetSponsorProgramRequest* request,
                                 v1::GetSponsorProgramResponse* response) override;
  grpc::Status ListSponsorPrograms(grpc::ServerContext* context,
                                   const v1::ListSponsorProgramsRequest* request,
                                   v1::ListSponsorProgramsResponse* response) override;

  // Creates the default category tree unless the tree has had categories.
  absl::Status SeedCategories();

 private:
  ContentRules Rules() const;
  // A serialized SearchExpertsResponse for a serialized request.
  absl::StatusOr<std::string> Search(const std::string& request_bytes);
  // An admin's approval or rejection: permission, the request's checks
  // (some in `validator` already), no reviewing one's own profile, the write.
  absl::Status Review(const auth::Principal& caller, v1::CatalogCommand command,
                      const std::string& request_kind, const std::string& request_id,
                      const std::string& expert_id, int64_t expected_version,
                      errors::Validator& validator, v1::ExpertProfile* profile);
  // An admin's change of the category tree, the same way.
  absl::Status TreeChange(const auth::Principal& caller, v1::CatalogCommand command,
                          const std::string& request_kind, const std::string& request_id,
                          const std::string& category_id, errors::Validator& validator,
                          v1::Category* category);
  // Write, then the profile (or category) as the read model has it after.
  // The expert's name, headline and bio sealed with their key (what the
  // command, the events and the snapshots carry).
  absl::StatusOr<v1::ProfileContent> SealTexts(v1::ProfileContent content,
                                              const std::string& expert_id);
  absl::Status WriteProfile(v1::CatalogCommand command, const std::string& expert_id,
                            const auth::Principal& caller, const std::string& request_kind,
                            const std::string& request_id, v1::ExpertProfile* profile,
                            int64_t expected_version = 0);
  absl::Status WriteCategory(v1::CatalogCommand command, const std::string& category_id,
                             const auth::Principal& caller, const std::string& request_kind,
                             const std::string& request_id, v1::Category* category);
  absl::StatusOr<v1::SponsorProgram> ProgramAfterWrite(const std::string& program_id);
  // The program if the caller is its sponsor or an admin; NOT_FOUND or
  // PERMISSION_DENIED otherwise.
  absl::StatusOr<v1::SponsorProgram> ProgramToManage(const std::string& program_id,
                                                     const auth::Principal& caller);
  absl::Status ProgramCommand(v1::CatalogCommand command, const std::string& program_id,
                              const std::string& request_id, const std::string& request_kind,
                              const auth::Principal& caller, v1::SponsorProgram* program);

  const CatalogOptions options_;
  CatalogParts parts_;
};

}  // namespace helpline::catalog
