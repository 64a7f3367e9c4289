// metrics.h — latency histograms for /metrics (Prometheus text format).
//
// A Histogram counts observations into fixed cumulative buckets, lock-free
// (any thread: handler, engine worker, writer timers). The sum is kept in
// whole microseconds so it is one atomic add; rendered in seconds.
//
// Like the counters, these describe every user together: the debug listener
// or a metrics key reads them (service.h), never an API key.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cllm::server {

class Histogram {
 public:
  // Histogram takes the buckets' upper bounds in seconds, ascending; +Inf is
  // added.
  explicit Histogram(std::vector<double> bounds_s);

  void Observe(std::chrono::nanoseconds d);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  // Render appends `# HELP`, `# TYPE NAME histogram`, one NAME_bucket{le=…}
  // line per bound (cumulative), then NAME_sum (seconds) and NAME_count.
  void Render(const std::string& name, const std::string& help, std::string& out) const;

 private:
  std::vector<double> bounds_s_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // [bounds + 1], not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
};

// LatencyMetrics are the server's request latencies.
struct LatencyMetrics {
  LatencyMetrics();
  // Request arrival (handler) → first generated token.
  Histogram time_to_first_token;
  // Between consecutive tokens of one sequence (its decode steps).
  Histogram inter_token;
  // Scheduler submit → admission into a decode slot.
  Histogram queue_wait;
  // Request arrival → the response's last byte queued (every route).
  Histogram request_duration;

  void Render(std::string& out) const;
};

}  // namespace cllm::server
