#include "services/catalog/domain/default_categories.h"

#include <initializer_list>
#include <utility>

namespace helpline::catalog {
namespace {

struct Branch {
  const char* id;
  const char* name;
  std::initializer_list<std::pair<const char*, const char*>> children;
};

}  // namespace

v1::SeedCategories DefaultCategories() {
  static const Branch kTree[] = {
      {"home-garden", "Home & garden",
       {{"home-repair", "Home repair"}, {"gardening", "Gardening"},
        {"cleaning", "Cleaning & organising"}}},
      {"bikes-cars", "Bikes & cars", {{"bike-repair", "Bike repair"}, {"car-care", "Car care"}}},
      {"cooking", "Cooking",
       {{"baking", "Baking"}, {"world-cuisine", "World cuisine"}, {"vegetarian", "Vegetarian"}}},
      {"computers", "Computers",
       {{"pc-help", "PC help"}, {"phones-tablets", "Phones & tablets"},
        {"programming", "Programming"}}},
      {"languages", "Languages",
       {{"german", "German"}, {"english", "English"}, {"spanish", "Spanish"},
        {"french", "French"}}},
      {"music", "Music", {{"guitar", "Guitar"}, {"piano", "Piano"}, {"singing", "Singing"}}},
      {"fitness", "Fitness",
       {{"yoga", "Yoga"}, {"running", "Running"}, {"strength-training", "Strength training"}}},
      {"arts-crafts", "Arts & crafts",
       {{"drawing", "Drawing & painting"}, {"knitting", "Knitting & sewing"}}},
      {"beauty-style", "Beauty & style", {{"make-up", "Make-up"}, {"hair", "Hair"}}},
      {"tutoring", "Tutoring", {{"maths", "Maths"}, {"homework", "Homework help"}}},
      {"pets", "Pets", {{"dog-training", "Dog training"}}},
  };
  v1::SeedCategories seed;
  for (const Branch& branch : kTree) {
    v1::CategorySeed& parent = *seed.add_categories();
    parent.set_category_id(branch.id);
    parent.set_name(branch.name);
    for (const auto& [id, name] : branch.children) {
      v1::CategorySeed& child = *seed.add_categories();
      child.set_category_id(id);
      child.set_name(name);
      child.set_parent_id(branch.id);
    }
  }
  return seed;
}

}  // namespace helpline::catalog
