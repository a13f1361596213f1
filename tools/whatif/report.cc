#include "tools/whatif/report.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace helpline::whatif {
namespace {

std::string Time(absl::Time at) {
  if (at == absl::InfinitePast() || at == absl::InfiniteFuture()) return "";
  return absl::FormatTime(absl::RFC3339_sec, at, absl::UTCTimeZone());
}

std::string Rates(const payments::CommissionOptions& commission) {
  std::string text = absl::StrCat(commission.default_bps);
  std::map<std::string, int32_t> sorted;
  for (const auto& [category, bps] : commission.category_bps) {
    sorted[absl::StrCat("category:", category)] = bps;
  }
  for (const auto& [program, bps] : commission.program_bps) {
    sorted[absl::StrCat("program:", program)] = bps;
  }
  for (const auto& [target, bps] : sorted) absl::StrAppend(&text, ", ", target, "=", bps);
  return text;
}

std::string Weights(const matching::RankingOptions& ranking) {
  return absl::StrFormat("rating=%.2f,acceptance=%.2f,price=%.2f,fairness=%.2f",
                         ranking.rating_weight, ranking.acceptance_weight, ranking.price_weight,
                         ranking.fairness_weight);
}

// Each expert's share of offers or of earnings, in the report's order.
std::vector<double> Shares(const Outcome& outcome, const std::vector<std::string>& experts,
                           bool earnings) {
  double total = 0;
  std::vector<double> values;
  for (const std::string& expert : experts) {
    auto found = outcome.experts.find(expert);
    double value = 0;
    if (found != outcome.experts.end()) {
      value = static_cast<double>(earnings ? found->second.earnings_minor : found->second.offers);
    }
    values.push_back(value);
    total += value;
  }
  for (double& value : values) value = total > 0 ? value / total : 0;
  return values;
}

// One row of the comparison: its name, and the figure for an outcome.
struct Figure {
  std::string name;
  std::string key;  // in JSON
  enum class Unit { kCount, kSeconds, kRatio } unit = Unit::kCount;
  std::function<double(const Outcome&)> of;
};

std::vector<Figure> Figures(const std::vector<std::string>& experts) {
  constexpr Figure::Unit kCount = Figure::Unit::kCount, kSeconds = Figure::Unit::kSeconds,
                         kRatio = Figure::Unit::kRatio;
  auto count = [](int64_t Outcome::*field) {
    return [field](const Outcome& o) { return static_cast<double>(o.*field); };
  };
  return {
      {"help requests", "requests", kCount, count(&Outcome::requests)},
      {"matched", "matched", kCount, count(&Outcome::matched)},
      {"expired", "expired", kCount, count(&Outcome::expired)},
      {"cancelled by the person", "cancelled", kCount, count(&Outcome::cancelled)},
      {"still waiting at the end", "unresolved", kCount, count(&Outcome::unresolved)},
      {"time to match, median", "time_to_match_median_seconds", kSeconds,
       [](const Outcome& o) { return absl::ToDoubleSeconds(Percentile(o.waits, 50)); }},
      {"time to match, p90", "time_to_match_p90_seconds", kSeconds,
       [](const Outcome& o) { return absl::ToDoubleSeconds(Percentile(o.waits, 90)); }},
      {"offers", "offers", kCount, count(&Outcome::offers)},
      {"offers per request", "offers_per_request", kRatio,
       [](const Outcome& o) {
         return o.requests > 0 ? static_cast<double>(o.offers) / o.requests : 0.0;
       }},
      {"sessions billed", "sessions", kCount, count(&Outcome::sessions)},
      {"revenue (billed)", "revenue_minor", kCount, count(&Outcome::revenue_minor)},
      {"refunds", "refunds", kCount, count(&Outcome::refunds)},
      {"refunded", "refunded_minor", kCount, count(&Outcome::refunded_minor)},
      {"commission, net of refunds", "commission_minor", kCount, count(&Outcome::commission_minor)},
      {"experts' earnings, net", "expert_earnings_minor", kCount,
       count(&Outcome::expert_earnings_minor)},
      {"Gini of offers", "gini_offers", kRatio,
       [experts](const Outcome& o) { return Gini(Shares(o, experts, false)); }},
      {"Gini of earnings", "gini_earnings", kRatio,
       [experts](const Outcome& o) { return Gini(Shares(o, experts, true)); }},
  };
}

std::string Show(double value, Figure::Unit unit) {
  switch (unit) {
    case Figure::Unit::kSeconds:
      return absl::FormatDuration(absl::Trunc(absl::Seconds(value), absl::Milliseconds(100)));
    case Figure::Unit::kRatio:
      return absl::StrFormat("%.3f", value);
    case Figure::Unit::kCount:
      break;
  }
  return absl::StrCat(static_cast<int64_t>(value));
}

std::string Change(double from, double to, Figure::Unit unit) {
  if (Show(from, unit) == Show(to, unit)) return "=";
  std::string sign = to > from ? "+" : "-";
  std::string text = absl::StrCat(sign, Show(std::abs(to - from), unit));
  if (from != 0) absl::StrAppend(&text, absl::StrFormat(" (%+.0f%%)", 100 * (to - from) / from));
  return text;
}

nlohmann::json PolicyJson(const Policy& policy) {
  nlohmann::json commission = {{"default_bps", policy.commission.default_bps}};
  commission["category_bps"] = nlohmann::json::object();
  commission["program_bps"] = nlohmann::json::object();
  for (const auto& [category, bps] : policy.commission.category_bps) {
    commission["category_bps"][category] = bps;
  }
  for (const auto& [program, bps] : policy.commission.program_bps) {
    commission["program_bps"][program] = bps;
  }
  return {
      {"offer_window_seconds", absl::ToDoubleSeconds(policy.offer_window)},
      {"ranking",
       {{"rating", policy.ranking.rating_weight},
        {"acceptance", policy.ranking.acceptance_weight},
        {"price", policy.ranking.price_weight},
        {"fairness", policy.ranking.fairness_weight},
        {"fairness_window_seconds", absl::ToDoubleSeconds(policy.ranking.fairness_window)}}},
      {"commission", commission},
      {"minimum_minutes", policy.minimum_minutes},  // 0: each expert's own
      {"refund_window_seconds", absl::ToDoubleSeconds(policy.refund_window)},
  };
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

std::vector<double> PerRun(const Figure& figure, const std::vector<Outcome>& runs) {
  std::vector<double> values;
  for (const Outcome& outcome : runs) values.push_back(figure.of(outcome));
  return values;
}

// Each expert's median share (of offers or of earnings) over the runs.
std::vector<double> MedianShares(const std::vector<Outcome>& runs,
                                 const std::vector<std::string>& experts, bool earnings) {
  std::vector<std::vector<double>> by_expert(experts.size());
  for (const Outcome& outcome : runs) {
    const std::vector<double> shares = Shares(outcome, experts, earnings);
    for (size_t e = 0; e < experts.size(); ++e) by_expert[e].push_back(shares[e]);
  }
  std::vector<double> medians;
  for (std::vector<double>& values : by_expert) medians.push_back(Median(std::move(values)));
  return medians;
}

// In how many runs the what-if moved the figure the way its median did.
std::string Agreement(const std::vector<double>& baseline, const std::vector<double>& what_if) {
  const double median_change = Median(what_if) - Median(baseline);
  if (baseline.size() < 2 || median_change == 0) return "";
  size_t agreeing = 0;
  for (size_t i = 0; i < baseline.size() && i < what_if.size(); ++i) {
    if ((what_if[i] - baseline[i]) * median_change > 0) ++agreeing;
  }
  return absl::StrFormat(", %d of %d runs", agreeing, baseline.size());
}

nlohmann::json Number(double value, Figure::Unit unit) {
  if (unit == Figure::Unit::kCount && value == std::floor(value)) {
    return static_cast<int64_t>(value);
  }
  return value;
}

}  // namespace

std::string ReportTable(const Report& report) {
  const size_t runs = report.simulated_what_if.size();
  std::string out = absl::StrFormat(
      "What-if over %d help requests (%s to %s) from %d events; simulated columns are medians of "
      "%d runs (seeds %d to %d); amounts in %s minor units.\n\n",
      report.recorded.requests,
      Time(report.window.since).empty() ? "the start" : Time(report.window.since),
      Time(report.window.until).empty() ? "the end" : Time(report.window.until), report.events,
      runs, report.seed, report.seed + std::max<size_t>(runs, 1) - 1,
      report.currency.empty() ? "the deployment's" : report.currency);
  const Policy& a = report.recorded_policy;
  const Policy& b = report.what_if_policy;
  auto policy_row = [&](const std::string& name, const std::string& recorded,
                        const std::string& what_if) {
    absl::StrAppend(&out, absl::StrFormat("  %-22s %-52s %s\n", name, recorded,
                                          recorded == what_if ? "(same)" : what_if));
  };
  absl::StrAppend(&out, absl::StrFormat("  %-22s %-52s %s\n", "policy", "recorded", "what-if"));
  policy_row("offer window", absl::FormatDuration(a.offer_window),
             absl::FormatDuration(b.offer_window));
  policy_row("ranking weights", Weights(a.ranking), Weights(b.ranking));
  policy_row("fairness window", absl::FormatDuration(a.ranking.fairness_window),
             absl::FormatDuration(b.ranking.fairness_window));
  policy_row("commission (bps)", Rates(a.commission), Rates(b.commission));
  auto minimum = [](int minutes) {
    return minutes > 0 ? absl::StrCat(minutes) : std::string("each expert's own");
  };
  policy_row("minimum minutes", minimum(a.minimum_minutes), minimum(b.minimum_minutes));
  policy_row("refund window", absl::FormatDuration(a.refund_window),
             absl::FormatDuration(b.refund_window));

  absl::StrAppend(&out, absl::StrFormat("\n  %-28s %14s %14s %14s  %s\n", "", "as recorded",
                                        "sim: recorded", "sim: what-if", "what-if vs sim: recorded"));
  for (const Figure& figure : Figures(report.experts)) {
    const std::vector<double> baseline = PerRun(figure, report.simulated_recorded_policy);
    const std::vector<double> what_if = PerRun(figure, report.simulated_what_if);
    const std::string change = Change(Median(baseline), Median(what_if), figure.unit);
    absl::StrAppend(
        &out, absl::StrFormat("  %-28s %14s %14s %14s  %s\n", figure.name,
                              Show(figure.of(report.recorded), figure.unit),
                              Show(Median(baseline), figure.unit),
                              Show(Median(what_if), figure.unit),
                              change == "=" ? change : change + Agreement(baseline, what_if)));
  }

  absl::StrAppend(&out, "\n  Each expert's share of offers and of earnings (%):\n");
  absl::StrAppend(&out, absl::StrFormat("  %-40s %17s %17s %17s\n", "expert", "as recorded",
                                        "sim: recorded", "sim: what-if"));
  const std::vector<std::vector<Outcome>> columns = {
      {report.recorded}, report.simulated_recorded_policy, report.simulated_what_if};
  std::vector<std::vector<double>> offer_shares, earning_shares;
  for (const std::vector<Outcome>& column : columns) {
    offer_shares.push_back(MedianShares(column, report.experts, false));
    earning_shares.push_back(MedianShares(column, report.experts, true));
  }
  for (size_t e = 0; e < report.experts.size(); ++e) {
    std::string row = absl::StrFormat("  %-40s", report.experts[e]);
    for (size_t c = 0; c < columns.size(); ++c) {
      absl::StrAppend(&row, absl::StrFormat(" %8.1f /%7.1f", 100 * offer_shares[c][e],
                                            100 * earning_shares[c][e]));
    }
    absl::StrAppend(&out, row, "\n");
  }

  absl::StrAppend(&out, "\n  Assumptions:\n");
  for (const std::string& assumption : report.assumptions) {
    absl::StrAppend(&out, "  - ", assumption, "\n");
  }
  return out;
}

std::string ReportJson(const Report& report) {
  nlohmann::json json;
  json["window"] = {{"since", Time(report.window.since)}, {"until", Time(report.window.until)}};
  json["events"] = report.events;
  json["seed"] = report.seed;
  json["runs"] = report.simulated_what_if.size();
  json["currency"] = report.currency;
  json["policies"] = {{"recorded", PolicyJson(report.recorded_policy)},
                      {"what_if", PolicyJson(report.what_if_policy)}};
  const std::vector<std::pair<std::string, std::vector<Outcome>>> columns = {
      {"recorded", {report.recorded}},
      {"simulated_recorded_policy", report.simulated_recorded_policy},
      {"simulated_what_if", report.simulated_what_if}};
  for (const auto& [name, runs] : columns) {
    nlohmann::json figures;
    for (const Figure& figure : Figures(report.experts)) {
      const std::vector<double> values = PerRun(figure, runs);
      figures[figure.key] = Number(Median(values), figure.unit);
      if (name != "recorded") {
        for (double value : values) figures["per_run"][figure.key].push_back(Number(value, figure.unit));
      }
    }
    nlohmann::json experts = nlohmann::json::array();
    const std::vector<double> offers = MedianShares(runs, report.experts, false);
    const std::vector<double> earnings = MedianShares(runs, report.experts, true);
    for (size_t e = 0; e < report.experts.size(); ++e) {
      std::vector<double> offered, sessions, earned;
      for (const Outcome& outcome : runs) {
        auto found = outcome.experts.find(report.experts[e]);
        const ExpertOutcome of = found != outcome.experts.end() ? found->second : ExpertOutcome{};
        offered.push_back(static_cast<double>(of.offers));
        sessions.push_back(static_cast<double>(of.sessions));
        earned.push_back(static_cast<double>(of.earnings_minor));
      }
      experts.push_back({{"expert_id", report.experts[e]},
                         {"offers", Number(Median(offered), Figure::Unit::kCount)},
                         {"sessions", Number(Median(sessions), Figure::Unit::kCount)},
                         {"earnings_minor", Number(Median(earned), Figure::Unit::kCount)},
                         {"offer_share", offers[e]},
                         {"earnings_share", earnings[e]}});
    }
    figures["experts"] = experts;
    json["outcomes"][name] = figures;
  }
  json["assumptions"] = report.assumptions;
  return json.dump(2);
}

}  // namespace helpline::whatif
