// The read model's search: text, filters, order and pagination, fed by the
// domain's own events.
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/catalog/domain/catalog_test_log.h"
#include "services/catalog/domain/default_categories.h"
#include "services/catalog/domain/read_model.h"
#include "services/catalog/domain/search_text.h"
#include "services/runtime/core/errors.h"

namespace helpline::catalog {
namespace {

using testing::CatalogTestLog;
using testing::ValidContent;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::string ExpertId(int n) { return absl::StrCat("0190a1b2-0000-7000-8000-", absl::Dec(n, absl::kZeroPad12)); }

class SearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::CatalogCommand seed;
    *seed.mutable_seed_categories() = DefaultCategories();
    ASSERT_TRUE(log_.Send(kCategoryTreeId, seed).ok());
  }

  // Creates, approves and (unless told otherwise) publishes a profile.
  void AddExpert(const std::string& id, const v1::ProfileContent& content, bool publish = true) {
    for (v1::CatalogCommand command : {Command("create"), Command("submit"), Command("approve")}) {
      if (command.has_create_profile()) *command.mutable_create_profile()->mutable_content() = content;
      ASSERT_TRUE(log_.Send(id, command).ok());
    }
    if (publish) ASSERT_TRUE(log_.Send(id, Command("publish")).ok());
  }

  static v1::CatalogCommand Command(const std::string& what) {
    v1::CatalogCommand command;
    if (what == "create") command.mutable_create_profile();
    if (what == "submit") command.mutable_submit_profile();
    if (what == "approve") command.mutable_approve_profile();
    if (what == "publish") command.mutable_publish_profile();
    if (what == "unpublish") command.mutable_unpublish_profile();
    return command;
  }

  v1::SearchExpertsResponse Search(v1::SearchExpertsRequest request) {
    SearchOptions options{"test", log_.now};
    absl::StatusOr<v1::SearchExpertsResponse> response = read_model_.Search(request, options);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::SearchExpertsResponse();
  }

  std::vector<std::string> Ids(const v1::SearchExpertsRequest& request) {
    std::vector<std::string> ids;
    v1::SearchExpertsResponse response = Search(request);
    for (const v1::ExpertHit& hit : response.hits()) ids.push_back(hit.expert_id());
    return ids;
  }

  static v1::SearchExpertsRequest Text(const std::string& text) {
    v1::SearchExpertsRequest request;
    request.set_text(text);
    return request;
  }

  CatalogReadModel read_model_;
  CatalogTestLog log_{&read_model_};
};

TEST(SearchText, FoldsCaseAccentsAndUmlauts) {
  EXPECT_THAT(QueryTokens("Fahrräder, CAFÉ & Straße!"), ElementsAre("fahrraeder", "cafe", "strasse"));
  EXPECT_THAT(IndexTokens("Müller"), ElementsAre("mueller", "muller"));
  EXPECT_THAT(QueryTokens("mueller"), ElementsAre("mueller"));
  EXPECT_THAT(QueryTokens("  "), IsEmpty());
}

TEST_F(SearchTest, TextMatchesEveryWordAndTheLastAsPrefix) {
  AddExpert(ExpertId(1), ValidContent("Fahrrad-Reparatur mit Herrn Müller"));
  AddExpert(ExpertId(2), ValidContent("Road bike gears explained"));
  AddExpert(ExpertId(3), ValidContent("Sourdough baking", "baking"));
  EXPECT_THAT(Ids(Text("müller")), ElementsAre(ExpertId(1)));
  EXPECT_THAT(Ids(Text("Mueller")), ElementsAre(ExpertId(1)));
  EXPECT_THAT(Ids(Text("muller")), ElementsAre(ExpertId(1)));
  EXPECT_THAT(Ids(Text("fahrrad rep")), ElementsAre(ExpertId(1)));
  EXPECT_THAT(Ids(Text("road gea")), ElementsAre(ExpertId(2)));
  EXPECT_THAT(Ids(Text("road baking")), IsEmpty()) << "every word must match";
  EXPECT_THAT(Ids(Text("SOURD")), ElementsAre(ExpertId(3)));
  EXPECT_THAT(Ids(Text("gears")), UnorderedElementsAre(ExpertId(1), ExpertId(2), ExpertId(3)))
      << "skills are searched too";
}

TEST_F(SearchTest, AHiddenExpertIsLeftOutOfTheHits) {
  AddExpert(ExpertId(1), ValidContent("Bike gears with Ottoline"));
  AddExpert(ExpertId(2), ValidContent("Bike gears with Wilbur"));
  SearchOptions options{"test", log_.now,
                        [](const std::string& id) { return id == ExpertId(1); }};
  absl::StatusOr<v1::SearchExpertsResponse> response =
      read_model_.Search(Text("bike gears"), options);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->hits_size(), 1);
  EXPECT_EQ(response->hits(0).expert_id(), ExpertId(2));
  EXPECT_THAT(Ids(Text("bike gears")), UnorderedElementsAre(ExpertId(1), ExpertId(2)));
}

TEST_F(SearchTest, AHitCarriesWhatAResultCardShows) {  // the rest: GetExpert
  AddExpert(ExpertId(1), ValidContent("Bike help", "bike-repair", 175));
  read_model_.RecordReview(ExpertId(1), 5);
  read_model_.SetOnline(ExpertId(1), true);
  v1::SearchExpertsResponse response = Search(Text("bike"));
  ASSERT_EQ(response.hits_size(), 1);
  const v1::ExpertHit& hit = response.hits(0);
  EXPECT_EQ(hit.expert_id(), ExpertId(1));
  EXPECT_EQ(hit.public_name(), "Ben");
  EXPECT_EQ(hit.headline(), "Bike help");
  EXPECT_THAT(hit.category_ids(), ElementsAre("bike-repair"));
  EXPECT_THAT(hit.languages(), ElementsAre("de", "en-GB"));
  EXPECT_EQ(hit.price().per_minute().rate().amount_minor(), 175);
  EXPECT_EQ(hit.price().per_minute().rate().currency_code(), "EUR");
  EXPECT_EQ(hit.rating().review_count(), 1);
  EXPECT_EQ(hit.rating().average_stars(), 5.0);
  EXPECT_TRUE(hit.online());
  EXPECT_FALSE(hit.sponsored());
  EXPECT_GT(hit.relevance(), 0);
}

TEST_F(SearchTest, HeadlineMatchesRankAboveBioMatches) {
  v1::ProfileContent in_bio = ValidContent("General help");
  in_bio.set_bio("I also know a little about espresso machines.");
  AddExpert(ExpertId(1), in_bio);
  AddExpert(ExpertId(2), ValidContent("Espresso machine repair"));
  EXPECT_THAT(Ids(Text("espresso")), ElementsAre(ExpertId(2), ExpertId(1)));
}

TEST_F(SearchTest, FiltersCombineAndCategoriesIncludeDescendants) {
  AddExpert(ExpertId(1), ValidContent("Bikes", "bike-repair", 100));
  AddExpert(ExpertId(2), ValidContent("Cars", "car-care", 300));
  AddExpert(ExpertId(3), ValidContent("Cakes", "baking", 100));
  v1::ProfileContent french = ValidContent("Vélos", "bike-repair", 200);
  french.clear_languages();
  french.add_languages("fr");
  AddExpert(ExpertId(4), french);

  v1::SearchExpertsRequest request;
  request.set_category_id("bikes-cars");
  EXPECT_THAT(Ids(request), UnorderedElementsAre(ExpertId(1), ExpertId(2), ExpertId(4)));
  request.set_language("en");
  EXPECT_THAT(Ids(request), UnorderedElementsAre(ExpertId(1), ExpertId(2))) << "en finds en-GB";
  request.mutable_max_price_per_minute()->set_currency_code("EUR");
  request.mutable_max_price_per_minute()->set_amount_minor(150);
  EXPECT_THAT(Ids(request), ElementsAre(ExpertId(1)));
  request.set_available_now(true);
  EXPECT_THAT(Ids(request), IsEmpty());
  read_model_.SetOnline(ExpertId(1), true);
  EXPECT_THAT(Ids(request), ElementsAre(ExpertId(1)));
  EXPECT_TRUE(Search(request).hits(0).online());
}

// Replaying the events topic, a profile's events can come before the
// category's (other partition): the expert is still found in it.
TEST(SearchReplay, AProfileBeforeItsCategoryIsFoundInIt) {
  CatalogReadModel replayed;
  CatalogTestLog tree;  // the category's events, held back
  CatalogTestLog log(&replayed);
  for (const char* what : {"create", "submit", "approve", "publish"}) {
    v1::CatalogCommand command;
    if (std::string(what) == "create") {
      *command.mutable_create_profile()->mutable_content() = ValidContent("Surfboards", "surfing");
    }
    if (std::string(what) == "submit") command.mutable_submit_profile();
    if (std::string(what) == "approve") command.mutable_approve_profile();
    if (std::string(what) == "publish") command.mutable_publish_profile();
    ASSERT_TRUE(log.Send(ExpertId(1), command).ok());
  }
  v1::CatalogCommand sports;
  sports.mutable_create_category()->set_category_id("sports");
  sports.mutable_create_category()->set_name("Sports");
  v1::CatalogCommand surfing;
  surfing.mutable_create_category()->set_category_id("surfing");
  surfing.mutable_create_category()->set_name("Surfing");
  surfing.mutable_create_category()->set_parent_id("sports");
  for (const v1::CatalogCommand& command : {sports, surfing}) {
    auto events = tree.Send(kCategoryTreeId, command);
    ASSERT_TRUE(events.ok());
    for (const v1::CatalogEvent& event : *events) replayed.Apply(event);
  }
  v1::SearchExpertsRequest request;
  request.set_category_id("sports");
  absl::StatusOr<v1::SearchExpertsResponse> found =
      replayed.Search(request, SearchOptions{"test", log.now});
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->hits_size(), 1);
  EXPECT_EQ(found->hits(0).expert_id(), ExpertId(1));
}

TEST_F(SearchTest, UnpublishedAndRejectedNeverAppear) {
  AddExpert(ExpertId(1), ValidContent("Bike help one"));
  AddExpert(ExpertId(2), ValidContent("Bike help two"), /*publish=*/false);
  v1::CatalogCommand create = Command("create");
  *create.mutable_create_profile()->mutable_content() = ValidContent("Bike help three");
  ASSERT_TRUE(log_.Send(ExpertId(3), create).ok());
  ASSERT_TRUE(log_.Send(ExpertId(3), Command("submit")).ok());
  v1::CatalogCommand reject;
  reject.mutable_reject_profile()->set_reason("no");
  ASSERT_TRUE(log_.Send(ExpertId(3), reject).ok());
  AddExpert(ExpertId(4), ValidContent("Bike help four"));
  ASSERT_TRUE(log_.Send(ExpertId(4), Command("unpublish")).ok());

  EXPECT_THAT(Ids(Text("bike")), ElementsAre(ExpertId(1)));
  EXPECT_THAT(Ids(v1::SearchExpertsRequest()), ElementsAre(ExpertId(1)));
}

TEST_F(SearchTest, HeldChangesAreNotSearchableUntilApproved) {
  AddExpert(ExpertId(1), ValidContent("Bike help"));
  v1::CatalogCommand update;
  *update.mutable_update_profile()->mutable_content() = ValidContent("Unicycle help");
  ASSERT_TRUE(log_.Send(ExpertId(1), update).ok());
  EXPECT_THAT(Ids(Text("unicycle")), IsEmpty());
  EXPECT_THAT(Ids(Text("bike")), ElementsAre(ExpertId(1)));
  ASSERT_TRUE(log_.Send(ExpertId(1), Command("approve")).ok());
  EXPECT_THAT(Ids(Text("unicycle")), ElementsAre(ExpertId(1)));
}

TEST_F(SearchTest, RatingOrderUsesTheBayesianAverage) {
  AddExpert(ExpertId(1), ValidContent("One lucky review"));
  AddExpert(ExpertId(2), ValidContent("Many good reviews"));
  AddExpert(ExpertId(3), ValidContent("No reviews"));
  read_model_.RecordReview(ExpertId(1), 5);
  for (int i = 0; i < 40; ++i) read_model_.RecordReview(ExpertId(2), i % 5 == 0 ? 4 : 5);
  v1::SearchExpertsRequest request;
  request.set_sort(v1::SEARCH_SORT_RATING);
  v1::SearchExpertsResponse response = Search(request);
  ASSERT_EQ(response.hits_size(), 3);
  EXPECT_EQ(response.hits(0).expert_id(), ExpertId(2));
  EXPECT_EQ(response.hits(1).expert_id(), ExpertId(1)) << "one 5-star review is not enough";
  EXPECT_EQ(response.hits(1).rating().average_stars(), 5.0);
  EXPECT_EQ(response.hits(1).rating().review_count(), 1);
  EXPECT_LT(response.hits(1).rating().score(), response.hits(0).rating().score());
  request.set_min_rating(4.5);
  EXPECT_THAT(Ids(request), ElementsAre(ExpertId(2)));
}

TEST_F(SearchTest, PriceSortComparesPerMinuteAndFixedPrices) {
  AddExpert(ExpertId(1), ValidContent("a", "bike-repair", 200));
  v1::ProfileContent fixed = ValidContent("b");
  fixed.mutable_price()->mutable_fixed()->mutable_price()->set_currency_code("EUR");
  fixed.mutable_price()->mutable_fixed()->mutable_price()->set_amount_minor(3000);
  fixed.mutable_price()->mutable_fixed()->set_session_minutes(30);  // 100 a minute
  AddExpert(ExpertId(2), fixed);
  AddExpert(ExpertId(3), ValidContent("c", "bike-repair", 150));
  v1::SearchExpertsRequest request;
  request.set_sort(v1::SEARCH_SORT_PRICE_LOW_TO_HIGH);
  EXPECT_THAT(Ids(request), ElementsAre(ExpertId(2), ExpertId(3), ExpertId(1)));
  request.set_sort(v1::SEARCH_SORT_PRICE_HIGH_TO_LOW);
  EXPECT_THAT(Ids(request), ElementsAre(ExpertId(1), ExpertId(3), ExpertId(2)));
  request.set_pricing(v1::PRICING_KIND_FIXED);
  EXPECT_THAT(Ids(request), ElementsAre(ExpertId(2)));
}

// Pages through every sort while other profiles come, go and get reviews:
// an expert whose own sort value (or status) did not change is seen exactly
// once.
TEST_F(SearchTest, PaginationNeitherRepeatsNorSkipsWhileOthersChange) {
  constexpr int kExperts = 60;
  for (int i = 0; i < kExperts; ++i) {
    AddExpert(ExpertId(i), ValidContent(absl::StrCat("Bike help ", i % 7), "bike-repair",
                                        100 + (i % 5) * 10));
  }
  for (v1::SearchSort sort : {v1::SEARCH_SORT_RELEVANCE, v1::SEARCH_SORT_RATING,
                              v1::SEARCH_SORT_PRICE_LOW_TO_HIGH,
                              v1::SEARCH_SORT_PRICE_HIGH_TO_LOW}) {
    for (bool with_text : {false, true}) {
      SCOPED_TRACE(absl::StrCat("sort ", sort, with_text ? " with text" : " browsing"));
      v1::SearchExpertsRequest request;
      request.set_sort(sort);
      request.set_page_size(7);
      if (with_text) request.set_text("bike hel");
      std::set<std::string> seen;
      std::set<std::string> changed;
      int page = 0;
      int next_new = 1000 * (1 + sort) + (with_text ? 500 : 0);
      do {
        v1::SearchExpertsResponse response = Search(request);
        for (const v1::ExpertHit& hit : response.hits()) {
          EXPECT_TRUE(seen.insert(hit.expert_id()).second || changed.contains(hit.expert_id()))
              << "repeated " << hit.expert_id();
        }
        // Between pages: a new expert, a review for someone, one unpublished.
        AddExpert(ExpertId(next_new++), ValidContent("Bike help new", "bike-repair", 125));
        std::string reviewed = ExpertId((page * 13) % kExperts);
        read_model_.RecordReview(reviewed, 1 + page % 5);
        changed.insert(reviewed);
        std::string gone = ExpertId((page * 17 + 5) % kExperts);
        if (log_.StateOf(gone).profile().status() == v1::PROFILE_STATUS_PUBLISHED) {
          ASSERT_TRUE(log_.Send(gone, Command("unpublish")).ok());
          changed.insert(gone);
        }
        request.set_page_token(response.next_page_token());
        ++page;
      } while (!request.page_token().empty() && page < 100);
      for (int i = 0; i < kExperts; ++i) {
        if (!changed.contains(ExpertId(i))) {
          EXPECT_TRUE(seen.contains(ExpertId(i))) << "skipped " << ExpertId(i);
        }
      }
      // Everyone published again for the next round.
      for (int i = 0; i < kExperts; ++i) {
        if (log_.StateOf(ExpertId(i)).profile().status() == v1::PROFILE_STATUS_UNPUBLISHED) {
          ASSERT_TRUE(log_.Send(ExpertId(i), Command("publish")).ok());
        }
      }
    }
  }
}

// Text scores depend on how rare the words are among everyone; pages after
// the first keep the first page's view, so others joining cannot make a hit
// repeat or be skipped.
TEST_F(SearchTest, TextPagesHoldWhileOthersChangeHowRareTheWordsAre) {
  v1::ProfileContent stronger = ValidContent("Piano piano lessons");
  AddExpert(ExpertId(1), stronger);
  AddExpert(ExpertId(2), ValidContent("Piano tuning"));
  AddExpert(ExpertId(3), ValidContent("Piano for kids"));
  for (const std::string& text : {std::string("piano"), std::string("pia")}) {
    SCOPED_TRACE(text);
    v1::SearchExpertsRequest request = Text(text);
    request.set_page_size(1);
    std::vector<std::string> seen;
    int next_new = text == "piano" ? 100 : 200;
    do {
      v1::SearchExpertsResponse response = Search(request);
      for (const v1::ExpertHit& hit : response.hits()) seen.push_back(hit.expert_id());
      // Ten more experts without the word, and one with another word of the prefix.
      for (int i = 0; i < 10; ++i) AddExpert(ExpertId(next_new++), ValidContent("Cooking"));
      AddExpert(ExpertId(next_new++), ValidContent("Pianist wanted"), /*publish=*/false);
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty() && seen.size() < 10);
    EXPECT_THAT(seen, UnorderedElementsAre(ExpertId(1), ExpertId(2), ExpertId(3)));
  }
}

TEST_F(SearchTest, APageTokenBelongsToItsSearch) {
  for (int i = 0; i < 5; ++i) AddExpert(ExpertId(i), ValidContent("Bike help"));
  v1::SearchExpertsRequest request;
  request.set_page_size(2);
  v1::SearchExpertsResponse first = Search(request);
  ASSERT_FALSE(first.next_page_token().empty());
  request.set_page_token(first.next_page_token());
  SearchOptions other{"another search", log_.now};
  absl::Status status = read_model_.Search(request, other).status();
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(errors::FieldViolations(status)[0].field, "page_token");
  request.set_page_token("garbage!");
  EXPECT_EQ(read_model_.Search(request, SearchOptions{"test", log_.now}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SearchTest, SponsoredExpertsAreFlaggedWhileTheProgramIsInEffect) {
  AddExpert(ExpertId(1), ValidContent("Bikes", "bike-repair"));
  AddExpert(ExpertId(2), ValidContent("Cakes", "baking"));
  AddExpert(ExpertId(3), ValidContent("Curry", "world-cuisine"));
  const std::string program = std::string(kSponsorProgramPrefix) + ExpertId(99);
  v1::CatalogCommand create;
  create.mutable_create_sponsor_program()->set_sponsor_id(ExpertId(98));
  v1::SponsorProgramTerms& terms = *create.mutable_create_sponsor_program()->mutable_terms();
  terms.set_name("Bikes and one cook");
  terms.add_category_ids("bikes-cars");
  terms.add_expert_ids(ExpertId(3));
  terms.set_free_sessions_per_person(1);
  terms.set_max_minutes_per_session(15);
  *terms.mutable_active_from() = ToProtoTime(log_.now + absl::Hours(1));
  ASSERT_TRUE(log_.Send(program, create).ok());

  v1::SearchExpertsRequest request;
  request.set_sponsored_only(true);
  EXPECT_THAT(Ids(request), IsEmpty()) << "not yet in effect";
  log_.now += absl::Hours(2);
  EXPECT_THAT(Ids(request), UnorderedElementsAre(ExpertId(1), ExpertId(3)));
  std::optional<v1::ExpertProfile> profile = read_model_.Profile(ExpertId(1), log_.now);
  ASSERT_TRUE(profile.has_value());
  EXPECT_THAT(profile->sponsor_program_ids(), ElementsAre(program));

  v1::CatalogCommand pause;
  pause.mutable_pause_sponsor_program();
  ASSERT_TRUE(log_.Send(program, pause).ok());
  EXPECT_THAT(Ids(request), IsEmpty());
}

TEST_F(SearchTest, CategoriesListTheTreeWithPathsAndCounts) {
  AddExpert(ExpertId(1), ValidContent("Bikes", "bike-repair"));
  AddExpert(ExpertId(2), ValidContent("Cars", "car-care"));
  std::vector<v1::Category> categories = read_model_.Categories(false);
  ASSERT_FALSE(categories.empty());
  auto find = [&](const std::string& id) {
    for (const v1::Category& category : categories) {
      if (category.category_id() == id) return category;
    }
    return v1::Category();
  };
  EXPECT_EQ(find("bikes-cars").expert_count(), 2);
  EXPECT_EQ(find("bike-repair").expert_count(), 1);
  EXPECT_THAT(find("bike-repair").path(), ElementsAre("Bikes & cars", "Bike repair"));
  EXPECT_EQ(categories.front().parent_id(), "") << "parents come first";
}

}  // namespace
}  // namespace helpline::catalog
