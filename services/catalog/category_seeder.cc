#include "services/catalog/category_seeder.h"

#include "services/runtime/server/log.h"

namespace helpline::catalog {

CategorySeeder::CategorySeeder(CatalogService& service, bool enabled)
    : service_(service), seeded_(!enabled), loop_("category seeder", absl::Seconds(1), [this] {
        if (seeded_.load()) return;
        if (absl::Status done = service_.SeedCategories(); done.ok()) {
          seeded_.store(true);
        } else {
          log::Warn("could not seed the default categories; trying again",
                    {{"error", done.ToString()}});
        }
      }) {}

}  // namespace helpline::catalog
