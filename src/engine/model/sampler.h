// sampler.h — token selection from logits: greedy, temperature, top-k, top-p,
// min-p and repetition penalty, seeded and reproducible on every platform
// (own xoshiro256** generator; no std:: distribution whose output varies
// between standard libraries).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace cllm::engine {

struct SamplingParams {
  float temperature = 0.0f;        // ≤ 0 → greedy (argmax, ties → lowest id)
  int top_k = 0;                   // 0 → off
  float top_p = 1.0f;              // 1 → off
  float min_p = 0.0f;              // 0 → off
  float repeat_penalty = 1.0f;     // 1 → off; applied to the last repeat_last_n tokens
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Sample picks a token from `logits` (n_vocab floats; modified in place by
  // the penalty) given the tokens generated so far in `history`.
  TokenId Sample(std::span<float> logits, std::span<const TokenId> history);

  // Next64 exposes the generator (tests).
  uint64_t Next64();

 private:
  double NextUnit();  // uniform in [0, 1)
  SamplingParams p_;
  uint64_t s_[4];
  std::vector<std::pair<float, TokenId>> cand_;
};

}  // namespace cllm::engine
