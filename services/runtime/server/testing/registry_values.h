#pragma once

#include <algorithm>
#include <optional>
#include <string>

#include "prometheus/client_metric.h"
#include "prometheus/labels.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

// Reading what a component reported to its Prometheus registry, for tests.
namespace helpline::server::testing {

// The first series of `name` that carries every one of `labels`, with its
// family's type; nullopt if there is none.
inline std::optional<std::pair<prometheus::MetricType, prometheus::ClientMetric>> FindSeries(
    prometheus::Registry& registry, const std::string& name, const prometheus::Labels& labels = {}) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      bool matches = std::all_of(labels.begin(), labels.end(), [&](const auto& wanted) {
        return std::any_of(metric.label.begin(), metric.label.end(),
                           [&](const prometheus::ClientMetric::Label& label) {
                             return label.name == wanted.first && label.value == wanted.second;
                           });
      });
      if (matches) return std::pair{family.type, metric};
    }
  }
  return std::nullopt;
}

// A counter's or gauge's value; nullopt if there is no such series.
inline std::optional<double> ValueOf(prometheus::Registry& registry, const std::string& name,
                                     const prometheus::Labels& labels = {}) {
  auto series = FindSeries(registry, name, labels);
  if (!series) return std::nullopt;
  return series->first == prometheus::MetricType::Counter ? series->second.counter.value
                                                          : series->second.gauge.value;
}

}  // namespace helpline::server::testing
