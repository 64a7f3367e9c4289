// model_progress.h — per-tensor progress for `cllm model quantize|synth`.
// On a terminal one status line is rewritten in place; otherwise silent
// (logs and pipes get only the final summary).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "engine/kernels/kernels.h"
#include "engine/quant/model_quantize.h"

namespace cllm::app {

class TensorProgress {
 public:
  TensorProgress() : tty_(isatty(fileno(stderr)) != 0), start_(std::chrono::steady_clock::now()) {}

  void operator()(size_t index, size_t count, const engine::TensorPlanEntry& e) {
    bytes_ += e.n_bytes;
    by_type_[engine::GetTypeTraits(e.to)->name] += 1;
    if (!tty_) return;
    std::fprintf(stderr, "\r\033[K[%4zu/%zu] %-32s %-5s -> %-5s  %8.1f MiB written", index + 1, count, e.name.c_str(),
                 engine::GetTypeTraits(e.from)->name, engine::GetTypeTraits(e.to)->name,
                 static_cast<double>(bytes_) / (1 << 20));
    if (index + 1 == count) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

  // Summary: "311 tensors (q4_K 169, q6_K 29, f32 113), 379.4 MiB, 12.3 s".
  std::string Summary() const {
    std::string types;
    size_t n = 0;
    for (const auto& [name, count] : by_type_) {
      types += (types.empty() ? "" : ", ") + name + " " + std::to_string(count);
      n += count;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    char buf[128];
    std::snprintf(buf, sizeof buf, "), %.1f MiB of tensor data, %.1f s", static_cast<double>(bytes_) / (1 << 20), secs);
    return std::to_string(n) + " tensors (" + types + buf;
  }

 private:
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  uint64_t bytes_ = 0;
  std::map<std::string, size_t> by_type_;
};

}  // namespace cllm::app
