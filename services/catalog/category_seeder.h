#pragma once

#include <atomic>

#include "absl/status/status.h"
#include "services/catalog/catalog_service.h"
#include "services/runtime/server/loop.h"

namespace helpline::catalog {

// Creates the default category tree when there is none, retried every
// second until it is there (catalog.seed_categories). Catalog serves once
// it is: an empty tree would refuse every profile.
class CategorySeeder {
 public:
  CategorySeeder(CatalogService& service, bool enabled);

  absl::Status Start() { return loop_.Start(); }
  void Stop() { loop_.Stop(); }
  bool Ready() const { return seeded_.load(); }

 private:
  CatalogService& service_;
  std::atomic<bool> seeded_;
  server::Loop loop_;
};

}  // namespace helpline::catalog
