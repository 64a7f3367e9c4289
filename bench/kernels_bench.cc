// kernels_bench — MatMul speed per weight type, instruction set and thread
// count.
//
//   decode/<type>/<isa>/threads:<n>   one token through a weight matrix of
//       ~48 MB (beyond the L3 cache): bytes_per_second is the weight read
//       rate, to compare with the machine's memory bandwidth (the decode
//       roofline, docs/engine.md).
//   prefill/<type>/<isa>/threads:<n>  64 tokens through a 1024×1024 matrix
//       (cache-resident): FLOP/s of the kernels' compute.
//   packed/<type>/<isa>/tokens:<n>/<memory|l2>/<amd|intel>   1 or 8 tokens
//       through the load-time layout (kQ4_Kx8, …) with 1024 columns, from
//       memory or L2, under each DecodeTuning: a decode batch's arithmetic
//       against its weight stream.
//
// Run: build/bin/kernels_bench --benchmark_min_time=0.2s [--benchmark_filter=decode/q4_K]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/kernels/simd_internal.h"
#include "engine/kernels/thread_pool.h"

namespace cllm::engine {
namespace {

// FillWeights writes well-formed values: fp32/fp16 weights near 1 (no NaN or
// subnormal slow paths), quantized blocks from a cheap generator (their fp16
// scales go through the same conversion whatever their value).
std::vector<uint8_t> FillWeights(GgmlType type, int64_t n_rows, int64_t n_cols) {
  std::vector<uint8_t> w(RowSizeBytes(type, n_cols) * static_cast<size_t>(n_rows));
  uint32_t s = 12345;
  if (type == GgmlType::kF32) {
    for (size_t i = 0; i + 4 <= w.size(); i += 4) {
      s = s * 1664525u + 1013904223u;
      float f = 1.0f + static_cast<float>(s >> 16) / 65536.0f;
      std::memcpy(&w[i], &f, 4);
    }
  } else if (type == GgmlType::kF16) {
    for (size_t i = 0; i + 2 <= w.size(); i += 2) {
      s = s * 1664525u + 1013904223u;
      uint16_t h = static_cast<uint16_t>(0x3c00 | (s >> 22));
      std::memcpy(&w[i], &h, 2);
    }
  } else {
    for (auto& b : w) {
      s = s * 1664525u + 1013904223u;
      b = static_cast<uint8_t>(s >> 24);
    }
  }
  return w;
}

void RunMatMul(benchmark::State& state, GgmlType type, Isa isa, int threads, int64_t n_rows, int64_t n_cols,
               int64_t n_tokens) {
  SetNumThreads(threads);
  auto w = FillWeights(type, n_rows, n_cols);
  std::vector<float> x(static_cast<size_t>(n_tokens * n_cols), 0.5f), out(static_cast<size_t>(n_tokens * n_rows));
  for (auto _ : state) {
    MatMulWith(isa, type, w.data(), n_rows, n_cols, x.data(), n_tokens, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.size()));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n_rows * n_cols * n_tokens),
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n_tokens), benchmark::Counter::kIsIterationInvariantRate);
}

// RunPacked is RunMatMul on the load-time layout the engine uses for `type`
// on `isa` (kQ8_0x16, kQ4_Kx8, kQ6_Kx8): the decode batches of a served model.
void RunPacked(benchmark::State& state, GgmlType type, Isa isa, simd::DecodeTuning tuning, int64_t n_rows,
               int64_t n_cols, int64_t n_tokens) {
  SetNumThreads(1);
  simd::SetDecodeTuning(tuning);
  const GgmlType packed = PackedLayoutFor(isa, type, n_rows);
  const auto file = FillWeights(type, n_rows, n_cols);
  std::vector<uint8_t> w(file.size());
  PackRows(type, packed, file.data(), n_rows, n_cols, w.data());
  std::vector<float> x(static_cast<size_t>(n_tokens * n_cols)), out(static_cast<size_t>(n_tokens * n_rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i * 7919 % 255) - 127) / 64.0f;
  for (auto _ : state) {
    MatMulWith(isa, packed, w.data(), n_rows, n_cols, x.data(), n_tokens, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  simd::ResetDecodeTuning();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.size()));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n_rows * n_cols * n_tokens),
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(n_tokens), benchmark::Counter::kIsIterationInvariantRate);
}

// RegisterBatches: 1 and 8 tokens through the packed layouts, from memory
// (~48 MB, a decode step's weight stream) and from L2 (1024 × 1024: the
// kernels' arithmetic alone), 1 thread, under each DecodeTuning (amd: Zen 4's
// choices, intel: the Xeon's) whatever the CPU. The 8-token batch from memory
// against the sum and the larger of the two is how far the arithmetic
// overlaps the stream.
void RegisterBatches() {
  const GgmlType kTypes[] = {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0};
  const int64_t n_cols = 1024;
  for (GgmlType type : kTypes) {
    const std::string tname = GetTypeTraits(type)->name;
    const int64_t stream_rows = (48ll << 20) / static_cast<int64_t>(RowSizeBytes(type, n_cols)) / 16 * 16;
    for (Isa isa : AvailableIsas()) {
      if (PackedLayoutFor(isa, type, 1024) == type) continue;
      for (int64_t tokens : {1, 8}) {
        for (bool stream : {true, false}) {
          for (simd::DecodeTuning tuning : {simd::DecodeTuning::kAmd, simd::DecodeTuning::kIntel}) {
            const std::string name = "packed/" + tname + "/" + IsaName(isa) + "/tokens:" + std::to_string(tokens) +
                                     (stream ? "/memory" : "/l2") +
                                     (tuning == simd::DecodeTuning::kAmd ? "/amd" : "/intel");
            const int64_t rows = stream ? stream_rows : 1024;
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
              RunPacked(st, type, isa, tuning, rows, n_cols, tokens);
            })->UseRealTime()->Unit(benchmark::kMicrosecond);
          }
        }
      }
    }
  }
}

void RegisterAll() {
  const GgmlType kTypes[] = {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0,
                             GgmlType::kQ4_0, GgmlType::kF16,  GgmlType::kF32};
  const int kThreads[] = {1, DefaultNumThreads()};
  for (GgmlType type : kTypes) {
    const std::string tname = GetTypeTraits(type)->name;
    const int64_t n_cols = 4096;
    const int64_t decode_rows = (48ll << 20) / static_cast<int64_t>(RowSizeBytes(type, n_cols));
    for (Isa isa : AvailableIsas()) {
      for (int threads : kThreads) {
        const std::string suffix = tname + "/" + IsaName(isa) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(("decode/" + suffix).c_str(), [=](benchmark::State& st) {
          RunMatMul(st, type, isa, threads, decode_rows, n_cols, 1);
        })->UseRealTime()->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("prefill/" + suffix).c_str(), [=](benchmark::State& st) {
          RunMatMul(st, type, isa, threads, 1024, 1024, 64);
        })->UseRealTime()->Unit(benchmark::kMicrosecond);
        if (threads == kThreads[1]) break;  // one-core machine: 1 == default
      }
    }
  }
}

}  // namespace
}  // namespace cllm::engine

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  cllm::engine::RegisterAll();
  cllm::engine::RegisterBatches();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
