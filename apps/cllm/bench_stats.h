// bench_stats.h — latency percentiles for the `cllm bench …` load tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace cllm::app {

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
  size_t n = 0;
};
inline Percentiles Summarize(std::vector<double> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(std::ceil(q * v.size())) - 1)]; };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

}  // namespace cllm::app
