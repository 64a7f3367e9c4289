// sampler_bench — one sampling step over a real vocabulary's logit row
// (Qwen3: 151,936 tokens), per setting, after the forward pass: what each
// generated token costs on the scheduler's thread.
//
//   sample/<row>/<setting>   row: "peaked" (a trained model's shape: a few
//       likely tokens, a long tail) or "flat" (a random-weight model's);
//       setting: greedy, the OpenAI default (temperature 1, nothing cut),
//       top_k=40, top_p=0.9, min_p=0.05, and logprobs (LogSoftmaxTop, 5).
//
// Run: build/bin/sampler_bench --benchmark_min_time=0.2s
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/model/sampler.h"

namespace cllm::engine {
namespace {

constexpr size_t kVocab = 151936;

std::vector<float> Row(bool peaked) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, peaked ? 2.5f : 0.5f);
  std::vector<float> v(kVocab);
  for (auto& x : v) x = normal(rng);
  if (peaked) {
    for (int i = 0; i < 8; ++i) v[static_cast<size_t>(i) * 977] = 18.0f - 1.5f * static_cast<float>(i);
  }
  return v;
}

void RunSample(benchmark::State& state, bool peaked, SamplingParams p, int logprobs) {
  const std::vector<float> row = Row(peaked);
  std::vector<float> logits(row.size());
  std::vector<TokenId> history;
  std::vector<TokenLogprob> top;
  Sampler sampler(p);
  for (auto _ : state) {
    logits = row;
    if (logprobs >= 0) {
      double log_sum = 0;
      LogSoftmaxTop(logits, logprobs, &log_sum, &top);
      benchmark::DoNotOptimize(log_sum);
    }
    benchmark::DoNotOptimize(sampler.Sample(logits, history));
  }
  state.SetItemsProcessed(state.iterations());
}

void RegisterAll() {
  struct Setting {
    const char* name;
    SamplingParams p;
    int logprobs;
  };
  SamplingParams greedy, openai, top_k, top_p, min_p;
  openai.temperature = top_k.temperature = top_p.temperature = min_p.temperature = 1.0f;
  top_k.top_k = 40;
  top_p.top_p = 0.9f;
  min_p.min_p = 0.05f;
  const Setting settings[] = {{"greedy", greedy, -1},       {"default", openai, -1}, {"top_k=40", top_k, -1},
                              {"top_p=0.9", top_p, -1},     {"min_p=0.05", min_p, -1},
                              {"default+logprobs=5", openai, 5}};
  for (bool peaked : {true, false}) {
    for (const Setting& s : settings) {
      const std::string name = std::string("sample/") + (peaked ? "peaked/" : "flat/") + s.name;
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { RunSample(st, peaked, s.p, s.logprobs); })
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace cllm::engine

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  cllm::engine::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
