// helpline-matching-decision-bench (Google Benchmark): one dispatcher
// decision - candidate selection and ranking for a help request - over
// 10,000 online experts fed through matching's read model as events, and a
// bare pass over the same experts as the floor any ranking pays. Each case
// reports p50_us and p99_us per decision besides Google Benchmark's mean.
#include <algorithm>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/read_model.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::matching {
namespace {

constexpr int kExperts = 10'000;
constexpr int kTopLevel = 11;
constexpr int kChildren = 3;
const char* const kLanguages[] = {"de", "en", "fr", "es", "it", "pl", "tr", "nl"};
const absl::Time kNow = absl::FromUnixSeconds(1'798'761'600);

std::string CategoryId(int top, int child) {
  return child < 0 ? absl::StrCat("top-", top) : absl::StrCat("cat-", top, "-", child);
}

// 10,000 published, available experts in 1-3 categories of an 11 x 3 tree,
// 1-2 languages, prices 50-400 per minute, some reviews and recent offers.
MatchingReadModel& World() {
  static MatchingReadModel* model = [] {
    auto* model = new MatchingReadModel();
    std::mt19937 random(42);
    auto apply_catalog = [&](const catalog::v1::CatalogEvent& event) {
      model->catalog_projection().Apply(event);
    };
    for (int top = 0; top < kTopLevel; ++top) {
      for (int child = -1; child < kChildren; ++child) {
        catalog::v1::CatalogEvent event;
        event.mutable_meta()->set_aggregate_id(catalog::kCategoryTreeId);
        event.mutable_category_created()->set_category_id(CategoryId(top, child));
        if (child >= 0) event.mutable_category_created()->set_parent_id(CategoryId(top, -1));
        apply_catalog(event);
      }
    }
    for (int i = 0; i < kExperts; ++i) {
      std::string id = absl::StrCat("expert-", i);
      catalog::v1::CatalogEvent approved;
      approved.mutable_meta()->set_aggregate_id(id);
      catalog::v1::ProfileContent& live = *approved.mutable_expert_approved()->mutable_live();
      int categories = 1 + static_cast<int>(random() % 3);
      for (int c = 0; c < categories; ++c) {
        live.add_category_ids(CategoryId(random() % kTopLevel, random() % kChildren));
      }
      live.add_languages(kLanguages[random() % 8]);
      if (random() % 2 == 0) live.add_languages("en");
      catalog::v1::PerMinutePrice& rate = *live.mutable_price()->mutable_per_minute();
      rate.mutable_rate()->set_currency_code("EUR");
      rate.mutable_rate()->set_amount_minor(50 + static_cast<int64_t>(random() % 351));
      rate.set_minimum_minutes(5);
      apply_catalog(approved);
      catalog::v1::CatalogEvent published;
      published.mutable_meta()->set_aggregate_id(id);
      published.mutable_profile_published();
      apply_catalog(published);
      v1::MatchingEvent online;
      online.mutable_meta()->set_aggregate_id(PresenceId(id));
      online.mutable_expert_went_online()->set_expert_id(id);
      online.mutable_expert_went_online()->set_status(v1::PRESENCE_STATUS_AVAILABLE);
      model->Apply(online);
      for (int r = static_cast<int>(random() % 20); r > 0; --r) {
        sessions::v1::SessionsEvent review;
        review.mutable_review_submitted()->set_expert_id(id);
        review.mutable_review_submitted()->set_stars(1 + static_cast<int>(random() % 5));
        model->sessions_projection().Apply(review);
      }
      for (int o = static_cast<int>(random() % 4); o > 0; --o) {
        v1::MatchingEvent offered;
        offered.mutable_meta()->set_aggregate_id(HelpRequestAggregate(absl::StrCat("h", i, o)));
        *offered.mutable_meta()->mutable_occurred_at() = ToProtoTime(kNow - absl::Minutes(o * 7));
        offered.mutable_expert_offered()->set_expert_id(id);
        model->Apply(offered);
      }
    }
    return model;
  }();
  return *model;
}

// Requests across the tree: top-level categories (their experts and all
// below) and leaves, common and rarer languages, budgets that cut some out;
// opened in the read model, as the dispatcher finds them.
std::vector<WaitingRequest> Requests(MatchingReadModel& model) {
  std::vector<WaitingRequest> requests;
  std::mt19937 random(7);
  for (int i = 0; i < 256; ++i) {
    WaitingRequest request;
    request.help_request_id = absl::StrCat("request-", i);
    request.query.person_id = absl::StrCat("person-", i);
    request.query.category_id =
        CategoryId(random() % kTopLevel, i % 2 == 0 ? -1 : static_cast<int>(random() % kChildren));
    request.query.language = i % 3 == 0 ? "en" : kLanguages[random() % 8];
    request.query.budget.mutable_max_per_minute()->set_currency_code("EUR");
    request.query.budget.mutable_max_per_minute()->set_amount_minor(
        150 + static_cast<int64_t>(random() % 250));
    request.query.max_minutes = 30;
    v1::MatchingEvent opened;
    opened.mutable_meta()->set_aggregate_id(HelpRequestAggregate(request.help_request_id));
    *opened.mutable_meta()->mutable_occurred_at() = ToProtoTime(kNow);
    v1::HelpRequested& asked = *opened.mutable_help_requested();
    asked.set_person_id(request.query.person_id);
    asked.set_category_id(request.query.category_id);
    asked.set_language(request.query.language);
    *asked.mutable_budget() = request.query.budget;
    asked.set_max_minutes(30);
    model.Apply(opened);
    requests.push_back(std::move(request));
  }
  return requests;
}

void ReportPercentiles(benchmark::State& state, std::vector<double>& micros) {
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
}

// What the dispatcher does per waiting request: CandidatesFor (the read
// model's lock, the exclusions, Rank for the best 10).
void BM_Decision(benchmark::State& state) {
  MatchingReadModel& model = World();
  std::vector<WaitingRequest> requests = Requests(model);
  std::vector<double> micros;
  size_t i = 0;
  int64_t candidates = 0;
  for (auto _ : state) {
    const WaitingRequest& request = requests[i++ % requests.size()];
    absl::Time start = absl::Now();
    std::vector<Candidate> best = model.CandidatesFor(request, kNow, 10);
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    candidates += static_cast<int64_t>(best.size());
    benchmark::DoNotOptimize(best);
  }
  state.counters["online_experts"] = static_cast<double>(model.available_experts());
  state.counters["candidates_per_decision"] =
      static_cast<double>(candidates) / static_cast<double>(state.iterations());
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_Decision);

// The floor: touch every online expert once (their price) and keep the 10
// cheapest, with nothing else checked.
void BM_BarePass(benchmark::State& state) {
  MatchingReadModel& model = World();
  std::vector<double> micros;
  for (auto _ : state) {
    absl::Time start = absl::Now();
    std::vector<int64_t> cheapest = model.WithPool([](const CandidatePool& pool) {
      std::vector<int64_t> prices;
      prices.reserve(kExperts);
      pool.ForEachAvailable([&](const ExpertEntry& expert) {
        prices.push_back(expert.price.per_minute().rate().amount_minor());
      });
      std::partial_sort(prices.begin(), prices.begin() + 10, prices.end());
      prices.resize(10);
      return prices;
    });
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    benchmark::DoNotOptimize(cheapest);
  }
  ReportPercentiles(state, micros);
}
BENCHMARK(BM_BarePass);

}  // namespace
}  // namespace helpline::matching

BENCHMARK_MAIN();
