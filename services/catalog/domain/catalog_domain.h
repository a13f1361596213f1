#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "helpline/catalog/v1/commands.pb.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/catalog/v1/state.pb.h"
#include "services/runtime/eventsourcing/domain.h"

// Catalog's three aggregates, decided and applied purely: an expert's
// profile (id: the user id), the category tree (one, id kCategoryTreeId) and
// sponsor programs (id: kSponsorProgramPrefix + UUID).
namespace helpline::catalog {

inline constexpr char kCategoryTreeId[] = "category-tree";
inline constexpr char kSponsorProgramPrefix[] = "sponsor-program:";

bool IsSponsorProgramId(const std::string& aggregate_id);

// Approved, published or unpublished: there is a live version.
bool IsApproved(v1::ProfileStatus status);

// Price and availability apply at once; everything else of an approved
// profile waits for review. These say which part differs.
bool PublicFieldsDiffer(const v1::ProfileContent& a, const v1::ProfileContent& b);
bool TermsDiffer(const v1::ProfileContent& a, const v1::ProfileContent& b);

struct CatalogDomain {
  using Command = helpline::catalog::v1::CatalogCommand;
  using Event = helpline::catalog::v1::CatalogEvent;
  using State = helpline::catalog::v1::CatalogState;

  static absl::StatusOr<std::vector<Event>> Decide(const State& state, const Command& command,
                                                   const es::DecideContext& context);
  static void Apply(State& state, const Event& event);
};

inline const es::AggregateType& CatalogType() {
  static const es::TypedAggregate<CatalogDomain> type;
  return type;
}

// Each aggregate's rules (one file each).
absl::StatusOr<std::vector<v1::CatalogEvent>> DecideProfile(const v1::ProfileState& profile,
                                                            int64_t version,
                                                            const v1::CatalogCommand& command,
                                                            const es::DecideContext& context);
void ApplyProfile(v1::ProfileState& profile, const v1::CatalogEvent& event);

absl::StatusOr<std::vector<v1::CatalogEvent>> DecideTree(const v1::CategoryTreeState& tree,
                                                         const v1::CatalogCommand& command);
void ApplyTree(v1::CategoryTreeState& tree, const v1::CatalogEvent& event);

absl::StatusOr<std::vector<v1::CatalogEvent>> DecideProgram(
    const v1::SponsorProgramState& program, int64_t version, const v1::CatalogCommand& command,
    const es::DecideContext& context);
void ApplyProgram(v1::SponsorProgramState& program, const v1::CatalogEvent& event);

// PERMISSION_DENIED: a command only Helpline's own reactors send.
absl::Status OnlyHelplineSends();

}  // namespace helpline::catalog
