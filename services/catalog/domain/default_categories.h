#pragma once

#include "helpline/catalog/v1/commands.pb.h"

namespace helpline::catalog {

// The tree a new deployment starts with (admins change it from there):
// parents before their children.
v1::SeedCategories DefaultCategories();

}  // namespace helpline::catalog
