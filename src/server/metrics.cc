#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace cllm::server {
namespace {

// Prometheus label values and sample values: shortest text that reads back
// as the same double ("0.005", "2.5", "+Inf").
std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// From 1 ms to 2 min: a token step on a small model is ~1 ms, a long queue
// wait or a whole generation takes minutes.
std::vector<double> LatencyBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds_s)
    : bounds_s_(std::move(bounds_s)), buckets_(new std::atomic<uint64_t>[bounds_s_.size() + 1]) {
  for (size_t i = 0; i <= bounds_s_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(std::chrono::nanoseconds d) {
  if (d.count() < 0) d = std::chrono::nanoseconds(0);  // a clock that went back counts as instant
  const double s = std::chrono::duration<double>(d).count();
  // The first bound >= s: Prometheus buckets are `le` (less or equal).
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_s_.begin(), bounds_s_.end(), s) - bounds_s_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()),
                    std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& help, std::string& out) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  // Read the buckets once; count is their total, so the +Inf bucket always
  // equals _count even while other threads observe.
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_s_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_s_.size() ? Number(bounds_s_[i]) : "+Inf";
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum " + Number(static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6) + "\n";
  out += name + "_count " + std::to_string(cumulative) + "\n";
}

LatencyMetrics::LatencyMetrics()
    : time_to_first_token(LatencyBounds()),
      inter_token(LatencyBounds()),
      queue_wait(LatencyBounds()),
      request_duration(LatencyBounds()) {}

void LatencyMetrics::Render(std::string& out) const {
  time_to_first_token.Render("cllm_time_to_first_token_seconds",
                             "request arrival to the first generated token, per completion", out);
  inter_token.Render("cllm_inter_token_seconds", "time between consecutive generated tokens of a sequence", out);
  queue_wait.Render("cllm_queue_wait_seconds", "completion submitted to the scheduler until admitted to a slot",
                    out);
  request_duration.Render("cllm_request_duration_seconds", "request arrival to the end of its response", out);
}

}  // namespace cllm::server
