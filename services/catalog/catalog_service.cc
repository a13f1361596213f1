#include "services/catalog/catalog_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/default_categories.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/language_tags.h"
#include "services/runtime/core/text_checks.h"
#include "services/runtime/server/log.h"

namespace helpline::catalog {
namespace {

constexpr int kMaxPageSize = 100;

// A caller's write: its command id comes from the kind of request and the
// caller's request id, so a retry is the same command.
es::CommandOrigin ByCaller(const std::string& aggregate_id, const auth::Principal& caller,
                           const std::string& request_kind, const std::string& request_id,
                           int64_t expected_version = 0) {
  return es::CommandOrigin::ByUser(
      aggregate_id, ids::CommandId(caller.user_id, absl::StrCat(request_kind, ":", request_id)),
      caller.user_id, expected_version);
}

void CheckPageSize(int page_size, errors::Validator& validator) {
  validator.Check(page_size >= 0 && page_size <= kMaxPageSize, "page_size",
                  absl::StrCat("must be 0 (the default, 20) to ", kMaxPageSize));
}

void CheckExpertId(const std::string& expert_id, const std::string& field,
                   errors::Validator& validator) {
  validator.Check(ids::IsUuid(expert_id), field, "must be an expert's user id");
}

void CheckProgramId(const std::string& program_id, errors::Validator& validator) {
  validator.Check(IsSponsorProgramId(program_id) &&
                      ids::IsUuid(program_id.substr(sizeof(kSponsorProgramPrefix) - 1)),
                  "program_id", "must be a sponsor program id (\"sponsor-program:<uuid>\")");
}

bool IsAdmin(const auth::Principal& caller) { return caller.HasRole("admin"); }

// What someone other than the owner or an admin sees of a profile.
v1::ExpertProfile PublicView(v1::ExpertProfile profile) {
  profile.clear_draft();
  profile.clear_rejection_reason();
  profile.clear_held_change();
  profile.clear_submitted_at();
  return profile;
}

// Top-level ProfileContent fields an update mask may name.
const google::protobuf::FieldDescriptor* ContentField(const std::string& path) {
  return v1::ProfileContent::descriptor()->FindFieldByName(path);
}

}  // namespace

CatalogService::CatalogService(CatalogOptions options, CatalogParts parts)
    : options_(std::move(options)), parts_(parts) {}

ContentRules CatalogService::Rules() const {
  ContentRules rules;
  rules.currency = options_.currency;
  rules.active_category = [this](const std::string& id) {
    return parts_.read_model.IsActiveCategory(id);
  };
  rules.check_time_zone = true;
  return rules;
}

absl::Status CatalogService::SeedCategories() {
  if (parts_.read_model.HasCategories()) return absl::OkStatus();
  v1::CatalogCommand seed;
  *seed.mutable_seed_categories() = DefaultCategories();
  return parts_.front.Write(seed, es::CommandOrigin::ByHelpline(
                                      kCategoryTreeId,
                                      ids::DerivedCommandId(kCategoryTreeId, "seed-v1"),
                                      "catalog.seed"));
}

absl::StatusOr<v1::ProfileContent> CatalogService::SealTexts(v1::ProfileContent content,
                                                            const std::string& expert_id) {
  const absl::Time deadline = absl::Now() + options_.command_timeout;
  for (std::string* text :
       {content.mutable_public_name(), content.mutable_headline(), content.mutable_bio()}) {
    absl::StatusOr<std::string> sealed = parts_.personal.Seal(expert_id, *text, deadline);
    if (!sealed.ok()) return sealed.status();
    *text = *std::move(sealed);
  }
  return content;
}

absl::Status CatalogService::WriteProfile(v1::CatalogCommand command,
                                          const std::string& expert_id,
                                          const auth::Principal& caller,
                                          const std::string& request_kind,
                                          const std::string& request_id, v1::ExpertProfile* profile,
                                          int64_t expected_version) {
  if (absl::Status written =
          parts_.front.Write(command, ByCaller(expert_id, caller, request_kind, request_id,
                                               expected_version));
      !written.ok()) {
    return written;
  }
  std::optional<v1::ExpertProfile> after = parts_.read_model.Profile(expert_id, parts_.clock.Now());
  if (!after) return absl::NotFoundError("no such profile");
  *profile = *std::move(after);
  return absl::OkStatus();
}

absl::Status CatalogService::WriteCategory(v1::CatalogCommand command,
                                           const std::string& category_id,
                                           const auth::Principal& caller,
                                           const std::string& request_kind,
                                           const std::string& request_id,
                                           v1::Category* category) {
  if (absl::Status written =
          parts_.front.Write(command, ByCaller(kCategoryTreeId, caller, request_kind, request_id));
      !written.ok()) {
    return written;
  }
  std::optional<v1::Category> after = parts_.read_model.Category(category_id);
  if (!after) return absl::NotFoundError("no such category");
  *category = *std::move(after);
  return absl::OkStatus();
}

absl::StatusOr<v1::SponsorProgram> CatalogService::ProgramAfterWrite(
    const std::string& program_id) {
  std::optional<v1::SponsorProgram> program =
      parts_.read_model.Program(program_id, parts_.clock.Now());
  if (!program) return absl::NotFoundError("no such sponsor program");
  return *std::move(program);
}

grpc::Status CatalogService::CreateProfile(grpc::ServerContext* context,
                                           const v1::CreateProfileRequest* request,
                                           v1::CreateProfileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (absl::Status allowed = auth::RequireRole(caller, "person"); !allowed.ok()) {
      return absl::PermissionDeniedError("only a person's account can become an expert");
    }
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    CheckProfileContent(request->content(), "content.", Rules(), validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    v1::CatalogCommand create;
    absl::StatusOr<v1::ProfileContent> content =
        SealTexts(Normalised(request->content()), caller.user_id);
    if (!content.ok()) return content.status();
    *create.mutable_create_profile()->mutable_content() = *std::move(content);
    return WriteProfile(create, caller.user_id, caller, "create-profile", request->request_id(),
                        response->mutable_profile());
  });
}

grpc::Status CatalogService::UpdateProfile(grpc::ServerContext* context,
                                           const v1::UpdateProfileRequest* request,
                                           v1::UpdateProfileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    validator.Check(request->expected_version() >= 0, "expected_version", "must not be negative");
    const auto& paths = request->update_mask().paths();
    for (int i = 0; i < paths.size(); ++i) {
      validator.Check(ContentField(paths[i]) != nullptr, absl::StrCat("update_mask.paths[", i, "]"),
                      "must name a field of ProfileContent, such as \"headline\" or \"price\"");
    }
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    std::optional<v1::ExpertProfile> current = parts_.front.ReadOrCatchUp(
        [&] { return parts_.read_model.Profile(caller.user_id, parts_.clock.Now()); });
    if (!current) return absl::NotFoundError("you have no expert profile; create one first");

    v1::ProfileContent content = current->draft();
    if (paths.empty()) {
      content = request->content();
    } else {
      const google::protobuf::Reflection* reflection = content.GetReflection();
      for (const std::string& path : paths) {
        const google::protobuf::FieldDescriptor* field = ContentField(path);
        reflection->ClearField(&content, field);
        if (field->is_repeated()) {
          for (int i = 0; i < reflection->FieldSize(request->content(), field); ++i) {
            if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
              reflection->AddString(&content, field,
                                    reflection->GetRepeatedString(request->content(), field, i));
            }
          }
        } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
          if (reflection->HasField(request->content(), field)) {
            reflection->MutableMessage(&content, field)
                ->CopyFrom(reflection->GetMessage(request->content(), field));
          }
        } else {
          reflection->SetString(&content, field,
                                reflection->GetString(request->content(), field));
        }
      }
    }
    CheckProfileContent(content, "content.", Rules(), validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    v1::CatalogCommand update;
    absl::StatusOr<v1::ProfileContent> sealed = SealTexts(Normalised(std::move(content)), caller.user_id);
    if (!sealed.ok()) return sealed.status();
    *update.mutable_update_profile()->mutable_content() = *std::move(sealed);
    return WriteProfile(update, caller.user_id, caller, "update-profile", request->request_id(),
                        response->mutable_profile(), request->expected_version());
  });
}

grpc::Status CatalogService::SubmitProfile(grpc::ServerContext* context,
                                           const v1::SubmitProfileRequest* request,
                                           v1::SubmitProfileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    v1::CatalogCommand submit;
    submit.mutable_submit_profile();
    absl::Status written = WriteProfile(submit, caller.user_id, caller, "submit-profile",
                                        request->request_id(), response->mutable_profile());
    if (written.code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError("you have no expert profile; create one first");
    }
    return written;
  });
}

absl::Status CatalogService::Review(const auth::Principal& caller, v1::CatalogCommand command,
                                    const std::string& request_kind, const std::string& request_id,
                                    const std::string& expert_id, int64_t expected_version,
                                    errors::Validator& validator, v1::ExpertProfile* profile) {
  if (absl::Status allowed = auth::RequireRole(caller, "admin"); !allowed.ok()) return allowed;
  text::CheckRequestId(request_id, "request_id", validator);
  CheckExpertId(expert_id, "expert_id", validator);
  validator.Check(expected_version >= 0, "expected_version", "must not be negative");
  if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
  if (expert_id == caller.user_id) {
    return absl::PermissionDeniedError("another admin reviews your own profile");
  }
  absl::Status written =
      WriteProfile(command, expert_id, caller, request_kind, request_id, profile, expected_version);
  if (written.ok()) {
    log::Info("profile reviewed",
              {{"expert_id", expert_id}, {"admin", caller.user_id}, {"decision", request_kind}});
  }
  return written;
}

grpc::Status CatalogService::ApproveProfile(grpc::ServerContext* context,
                                            const v1::ApproveProfileRequest* request,
                                            v1::ApproveProfileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) {
    v1::CatalogCommand approve;
    approve.mutable_approve_profile();
    errors::Validator validator;
    return Review(caller, approve, "approve-profile", request->request_id(), request->expert_id(),
                  request->expected_version(), validator, response->mutable_profile());
  });
}

grpc::Status CatalogService::RejectProfile(grpc::ServerContext* context,
                                           const v1::RejectProfileRequest* request,
                                           v1::RejectProfileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) {
    v1::CatalogCommand reject;
    reject.mutable_reject_profile()->set_reason(request->reason());
    errors::Validator validator;
    text::CheckText(request->reason(), 1, 1000, "reason", validator, /*multiline=*/true);
    return Review(caller, reject, "reject-profile", request->request_id(), request->expert_id(),
                  request->expected_version(), validator, response->mutable_profile());
  });
}

grpc::Status CatalogService::PublishProfile(grpc::ServerContext* context,
                                            const v1::PublishProfileRequest* request,
                                            v1::PublishProfileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    if (!request->expert_id().empty()) CheckExpertId(request->expert_id(), "expert_id", validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    const bool for_someone_else =
        !request->expert_id().empty() && request->expert_id() != caller.user_id;
    if (for_someone_else && !IsAdmin(caller)) {
      return absl::PermissionDeniedError("only the expert or an admin publishes a profile");
    }
    const std::string& expert_id = for_someone_else ? request->expert_id() : caller.user_id;
    v1::CatalogCommand publish;
    publish.mutable_publish_profile()->set_by_admin(for_someone_else);
    return WriteProfile(publish, expert_id, caller, "publish-profile", request->request_id(),
                        response->mutable_profile());
  });
}

grpc::Status CatalogService::UnpublishProfile(grpc::ServerContext* context,
                                              const v1::UnpublishProfileRequest* request,
                                              v1::UnpublishProfileResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    const bool for_someone_else =
        !request->expert_id().empty() && request->expert_id() != caller.user_id;
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    if (!request->expert_id().empty()) CheckExpertId(request->expert_id(), "expert_id", validator);
    if (for_someone_else) {
      text::CheckText(request->reason(), 1, 1000, "reason", validator, true);
    } else {
      text::CheckText(request->reason(), 0, 1000, "reason", validator, true);
    }
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    if (for_someone_else && !IsAdmin(caller)) {
      return absl::PermissionDeniedError("only the expert or an admin unpublishes a profile");
    }
    const std::string& expert_id = for_someone_else ? request->expert_id() : caller.user_id;
    v1::CatalogCommand unpublish;
    if (for_someone_else) {
      unpublish.mutable_unpublish_profile()->set_reason(request->reason());
    } else {
      // The expert's own words, sealed like their profile.
      absl::StatusOr<std::string> reason = parts_.personal.Seal(
          caller.user_id, request->reason(), absl::Now() + options_.command_timeout);
      if (!reason.ok()) return reason.status();
      unpublish.mutable_unpublish_profile()->set_reason(*std::move(reason));
    }
    unpublish.mutable_unpublish_profile()->set_by_admin(for_someone_else);
    return WriteProfile(unpublish, expert_id, caller, "unpublish-profile", request->request_id(),
                        response->mutable_profile());
  });
}

grpc::Status CatalogService::GetExpert(grpc::ServerContext* context,
                                       const v1::GetExpertRequest* request,
                                       v1::GetExpertResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    CheckExpertId(request->expert_id(), "expert_id", validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    std::optional<v1::ExpertProfile> profile = parts_.front.ReadOrCatchUp([&] {
      return parts_.read_model.Profile(request->expert_id(), parts_.clock.Now());
    });
    const bool privileged = request->expert_id() == caller.user_id || IsAdmin(caller);
    if (!profile || parts_.closed_accounts.IsClosed(request->expert_id()) ||
        (!privileged && profile->status() != v1::PROFILE_STATUS_PUBLISHED)) {
      return absl::NotFoundError("no such expert");
    }
    *response->mutable_profile() = privileged ? *std::move(profile) : PublicView(*profile);
    return absl::OkStatus();
  });
}

grpc::Status CatalogService::ListReviewQueue(grpc::ServerContext* context,
                                             const v1::ListReviewQueueRequest* request,
                                             v1::ListReviewQueueResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (absl::Status allowed = auth::RequireRole(caller, "admin"); !allowed.ok()) return allowed;
    errors::Validator validator;
    CheckPageSize(request->page_size(), validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    auto page = parts_.read_model.ReviewQueue(request->page_size(), request->page_token(),
                                              parts_.clock.Now());
    if (!page.ok()) return page.status();
    for (v1::ExpertProfile& profile : page->first) {
      if (parts_.closed_accounts.IsClosed(profile.expert_id())) continue;
      *response->add_profiles() = std::move(profile);
    }
    response->set_next_page_token(page->second);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> CatalogService::Search(const std::string& request_bytes) {
  v1::SearchExpertsRequest request;
  if (!request.ParseFromString(request_bytes)) {
    return absl::InvalidArgumentError("the request is not a SearchExpertsRequest");
  }
  errors::Validator validator;
  text::CheckText(request.text(), 0, 200, "text", validator);
  if (!request.category_id().empty()) {
    validator.Check(parts_.read_model.IsCategory(request.category_id()), "category_id",
                    "is not a category (see ListCategories)");
  }
  v1::SearchExpertsRequest normalised = request;
  if (!request.language().empty()) {
    std::optional<std::string> tag = text::NormaliseLanguageTag(request.language());
    validator.Check(tag.has_value(), "language",
                    "must be a BCP 47 language tag such as \"de\" or \"en-GB\"");
    if (tag) normalised.set_language(*tag);
  }
  for (const auto& [field, money] :
       {std::pair<std::string, const runtime::v1::Money*>{"min_price_per_minute",
                                                           &request.min_price_per_minute()},
        {"max_price_per_minute", &request.max_price_per_minute()}}) {
    const bool present = field == "min_price_per_minute" ? request.has_min_price_per_minute()
                                                        : request.has_max_price_per_minute();
    if (!present) continue;
    validator.Check(money->currency_code() == options_.currency, field + ".currency_code",
                    absl::StrCat("must be ", options_.currency, ", this deployment's currency"));
    validator.Check(money->amount_minor() >= 0, field + ".amount_minor", "must not be negative");
  }
  if (request.has_min_price_per_minute() && request.has_max_price_per_minute()) {
    validator.Check(request.min_price_per_minute().amount_minor() <=
                        request.max_price_per_minute().amount_minor(),
                    "max_price_per_minute.amount_minor", "must not be below the minimum");
  }
  validator.Check(request.min_rating() >= 0 && request.min_rating() <= 5, "min_rating",
                  "must be 0 to 5");
  validator.Check(v1::SearchSort_IsValid(request.sort()), "sort", "is not a known sort");
  validator.Check(v1::PricingKind_IsValid(request.pricing()), "pricing",
                  "is not a known kind of pricing");
  CheckPageSize(request.page_size(), validator);
  if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;

  v1::SearchExpertsRequest identity = normalised;
  identity.clear_page_size();
  identity.clear_page_token();
  std::string serialized;
  identity.SerializeToString(&serialized);
  SearchOptions search{ids::UuidV5(ids::kHelplineNamespace, serialized).substr(0, 13),
                       parts_.clock.Now(), [this](const std::string& expert_id) {
                         return parts_.closed_accounts.IsClosed(expert_id);
                       }};
  return parts_.read_model.SearchSerialized(normalised, search);
}

grpc::ServerUnaryReactor* CatalogService::SearchExperts(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request,
                                                        grpc::ByteBuffer* response) {
  grpc::Status status = parts_.guard.Authenticated(context, [&](const auth::Principal&) {
    grpc::Slice request_slice;
    if (!request->DumpToSingleSlice(&request_slice).ok()) {
      return absl::InvalidArgumentError("the request could not be read");
    }
    absl::StatusOr<std::string> page = Search(std::string(
        reinterpret_cast<const char*>(request_slice.begin()), request_slice.size()));
    if (!page.ok()) return page.status();
    // Handed to gRPC without a copy; it frees the string with the slice.
    auto* bytes = new std::string(*std::move(page));
    grpc::Slice slice(
        bytes->data(), bytes->size(), [](void* owned) { delete static_cast<std::string*>(owned); },
        bytes);
    *response = grpc::ByteBuffer(&slice, 1);
    return absl::OkStatus();
  });
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::Status CatalogService::ListCategories(grpc::ServerContext* context,
                                            const v1::ListCategoriesRequest* request,
                                            v1::ListCategoriesResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal&) -> absl::Status {
    for (v1::Category& category : parts_.read_model.Categories(request->include_retired())) {
      *response->add_categories() = std::move(category);
    }
    return absl::OkStatus();
  });
}

absl::Status CatalogService::TreeChange(const auth::Principal& caller,
                                        v1::CatalogCommand command,
                                        const std::string& request_kind,
                                        const std::string& request_id,
                                        const std::string& category_id,
                                        errors::Validator& validator, v1::Category* category) {
  if (absl::Status allowed = auth::RequireRole(caller, "admin"); !allowed.ok()) return allowed;
  text::CheckRequestId(request_id, "request_id", validator);
  if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
  return WriteCategory(command, category_id, caller, request_kind, request_id, category);
}

grpc::Status CatalogService::CreateCategory(grpc::ServerContext* context,
                                            const v1::CreateCategoryRequest* request,
                                            v1::CreateCategoryResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) {
    errors::Validator validator;
    validator.Check(IsCategorySlug(request->category_id()), "category_id",
                    "must be 2 to 40 of a-z, 0-9 and \"-\" (a slug)");
    text::CheckText(request->name(), 1, 60, "name", validator);
    if (!request->parent_id().empty()) {
      validator.Check(parts_.read_model.IsActiveCategory(request->parent_id()), "parent_id",
                      "is not an active category");
    }
    v1::CatalogCommand create;
    create.mutable_create_category()->set_category_id(request->category_id());
    create.mutable_create_category()->set_name(request->name());
    create.mutable_create_category()->set_parent_id(request->parent_id());
    return TreeChange(caller, create, "create-category", request->request_id(),
                      request->category_id(), validator, response->mutable_category());
  });
}

grpc::Status CatalogService::RenameCategory(grpc::ServerContext* context,
                                            const v1::RenameCategoryRequest* request,
                                            v1::RenameCategoryResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) {
    errors::Validator validator;
    validator.Check(!request->category_id().empty(), "category_id", "is required");
    text::CheckText(request->name(), 1, 60, "name", validator);
    v1::CatalogCommand rename;
    rename.mutable_rename_category()->set_category_id(request->category_id());
    rename.mutable_rename_category()->set_name(request->name());
    return TreeChange(caller, rename, "rename-category", request->request_id(),
                      request->category_id(), validator, response->mutable_category());
  });
}

grpc::Status CatalogService::MoveCategory(grpc::ServerContext* context,
                                          const v1::MoveCategoryRequest* request,
                                          v1::MoveCategoryResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) {
    errors::Validator validator;
    validator.Check(!request->category_id().empty(), "category_id", "is required");
    v1::CatalogCommand move;
    move.mutable_move_category()->set_category_id(request->category_id());
    move.mutable_move_category()->set_parent_id(request->parent_id());
    return TreeChange(caller, move, "move-category", request->request_id(), request->category_id(),
                      validator, response->mutable_category());
  });
}

grpc::Status CatalogService::RetireCategory(grpc::ServerContext* context,
                                            const v1::RetireCategoryRequest* request,
                                            v1::RetireCategoryResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) {
    errors::Validator validator;
    validator.Check(!request->category_id().empty(), "category_id", "is required");
    v1::CatalogCommand retire;
    retire.mutable_retire_category()->set_category_id(request->category_id());
    return TreeChange(caller, retire, "retire-category", request->request_id(),
                      request->category_id(), validator, response->mutable_category());
  });
}

grpc::Status CatalogService::CreateSponsorProgram(grpc::ServerContext* context,
                                                  const v1::CreateSponsorProgramRequest* request,
                                                  v1::CreateSponsorProgramResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (absl::Status allowed = auth::RequireRole(caller, "sponsor"); !allowed.ok()) {
      return allowed;
    }
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    CheckSponsorTerms(request->terms(), "terms.", Rules(), validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    const std::string program_id = absl::StrCat(
        kSponsorProgramPrefix,
        ids::UuidV5(ids::kHelplineNamespace,
                    absl::StrCat("sponsor-program\n", caller.user_id, "\n", request->request_id())));
    v1::CatalogCommand create;
    create.mutable_create_sponsor_program()->set_sponsor_id(caller.user_id);
    *create.mutable_create_sponsor_program()->mutable_terms() = request->terms();
    if (absl::Status written = parts_.front.Write(
            create, ByCaller(program_id, caller, "create-sponsor-program", request->request_id()));
        !written.ok()) {
      return written;
    }
    absl::StatusOr<v1::SponsorProgram> program = ProgramAfterWrite(program_id);
    if (!program.ok()) return program.status();
    *response->mutable_program() = *std::move(program);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::SponsorProgram> CatalogService::ProgramToManage(const std::string& program_id,
                                                                   const auth::Principal& caller) {
  std::optional<v1::SponsorProgram> program =
      parts_.read_model.Program(program_id, parts_.clock.Now());
  if (!program) return absl::NotFoundError("no such sponsor program");
  if (program->sponsor_id() != caller.user_id && !IsAdmin(caller)) {
    return absl::PermissionDeniedError("only its sponsor or an admin manages a sponsor program");
  }
  return *std::move(program);
}

absl::Status CatalogService::ProgramCommand(v1::CatalogCommand command,
                                            const std::string& program_id,
                                            const std::string& request_id,
                                            const std::string& request_kind,
                                            const auth::Principal& caller,
                                            v1::SponsorProgram* program) {
  errors::Validator validator;
  text::CheckRequestId(request_id, "request_id", validator);
  CheckProgramId(program_id, validator);
  if (command.has_update_sponsor_program()) {
    CheckSponsorTerms(command.update_sponsor_program().terms(), "terms.", Rules(), validator);
  }
  if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
  if (absl::Status allowed = ProgramToManage(program_id, caller).status(); !allowed.ok()) {
    return allowed;
  }
  if (absl::Status written =
          parts_.front.Write(command, ByCaller(program_id, caller, request_kind, request_id,
                                               command.meta().expected_version()));
      !written.ok()) {
    return written;
  }
  absl::StatusOr<v1::SponsorProgram> after = ProgramAfterWrite(program_id);
  if (!after.ok()) return after.status();
  *program = *std::move(after);
  return absl::OkStatus();
}

grpc::Status CatalogService::UpdateSponsorProgram(grpc::ServerContext* context,
                                                  const v1::UpdateSponsorProgramRequest* request,
                                                  v1::UpdateSponsorProgramResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (request->expected_version() < 0) {
      return errors::InvalidField("expected_version", "must not be negative");
    }
    v1::CatalogCommand update;
    *update.mutable_update_sponsor_program()->mutable_terms() = request->terms();
    update.mutable_meta()->set_expected_version(request->expected_version());
    return ProgramCommand(update, request->program_id(), request->request_id(),
                          "update-sponsor-program", caller, response->mutable_program());
  });
}

grpc::Status CatalogService::PauseSponsorProgram(grpc::ServerContext* context,
                                                 const v1::PauseSponsorProgramRequest* request,
                                                 v1::PauseSponsorProgramResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    v1::CatalogCommand pause;
    pause.mutable_pause_sponsor_program();
    return ProgramCommand(pause, request->program_id(), request->request_id(),
                          "pause-sponsor-program", caller, response->mutable_program());
  });
}

grpc::Status CatalogService::ResumeSponsorProgram(grpc::ServerContext* context,
                                                  const v1::ResumeSponsorProgramRequest* request,
                                                  v1::ResumeSponsorProgramResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    v1::CatalogCommand resume;
    resume.mutable_resume_sponsor_program();
    return ProgramCommand(resume, request->program_id(), request->request_id(),
                          "resume-sponsor-program", caller, response->mutable_program());
  });
}

grpc::Status CatalogService::GetSponsorProgram(grpc::ServerContext* context,
                                               const v1::GetSponsorProgramRequest* request,
                                               v1::GetSponsorProgramResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    CheckProgramId(request->program_id(), validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    std::optional<v1::SponsorProgram> program =
        parts_.read_model.Program(request->program_id(), parts_.clock.Now());
    if (!program || !(program->in_effect() || program->sponsor_id() == caller.user_id ||
                      IsAdmin(caller))) {
      return absl::NotFoundError("no such sponsor program");
    }
    *response->mutable_program() = *std::move(program);
    return absl::OkStatus();
  });
}

grpc::Status CatalogService::ListSponsorPrograms(grpc::ServerContext* context,
                                                 const v1::ListSponsorProgramsRequest* request,
                                                 v1::ListSponsorProgramsResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    if (!request->sponsor_id().empty()) CheckExpertId(request->sponsor_id(), "sponsor_id", validator);
    if (!request->expert_id().empty()) CheckExpertId(request->expert_id(), "expert_id", validator);
    CheckPageSize(request->page_size(), validator);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    const bool admin = IsAdmin(caller);
    auto visible = [&](const v1::SponsorProgram& program) {
      if (!request->sponsor_id().empty() && program.sponsor_id() != request->sponsor_id()) {
        return false;
      }
      return program.in_effect() || admin || program.sponsor_id() == caller.user_id;
    };
    auto page = parts_.read_model.Programs(visible, request->expert_id(), request->page_size(),
                                           request->page_token(), parts_.clock.Now());
    if (!page.ok()) return page.status();
    for (v1::SponsorProgram& program : page->first) *response->add_programs() = std::move(program);
    response->set_next_page_token(page->second);
    return absl::OkStatus();
  });
}

}  // namespace helpline::catalog
