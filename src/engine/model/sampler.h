// sampler.h — token selection from logits: greedy, temperature, top-k, top-p,
// min-p, logit bias, repetition, presence and frequency penalties, seeded and reproducible on every platform
// (own xoshiro256** generator; no std:: distribution whose output varies
// between standard libraries).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
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
  // OpenAI's penalties, over the generated tokens only (history after the
  // prompt): logit -= frequency_penalty · count + presence_penalty · [count > 0].
  float presence_penalty = 0.0f;   // 0 → off
  float frequency_penalty = 0.0f;  // 0 → off
  // Added to the token's logit before any penalty (OpenAI's logit_bias;
  // ids must be in the vocabulary: others are ignored here, refused by the API).
  std::vector<std::pair<TokenId, float>> logit_bias = {};  // (an initializer: positional aggregates may omit it)
};

// TokenLogprob is one token's log-probability under the model's own
// distribution (log-softmax of the raw logits, before bias, penalties,
// constraints and temperature), with its piece (raw bytes).
struct TokenLogprob {
  TokenId token = -1;
  float logprob = 0.0f;
  std::string piece;
};

// StepLogprobs describes one sampling step: the chosen token and the `k`
// most likely tokens (descending logprob, ties → lower id).
struct StepLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
};

// LogSoftmaxTop computes log Σ exp(logits) into *out_log_sum (one
// vectorised softmax and a double sum, to a few float roundings) and the `k`
// largest finite logits as (id, logprob) into *out_top, most likely first
// (a bounded heap). k ≤ 0 leaves *out_top empty.
void LogSoftmaxTop(std::span<const float> logits, int k, double* out_log_sum, std::vector<TokenLogprob>* out_top);

// TokenConstraint restricts which tokens may come next (grammar-constrained
// output, engine/grammar). Before each sampling step Mask sets the logits of
// every token that cannot continue the constrained text to -infinity (once
// the text is complete, every token but end-of-generation); Accept advances
// it past the token that was chosen. It holds one sequence's state: each
// sequence needs its own (Fresh, e.g. for the n choices of one request).
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  virtual void Mask(std::span<float> logits) = 0;
  virtual void Accept(TokenId token) = 0;
  // Fresh returns a constraint of the same kind in its start state.
  virtual std::shared_ptr<TokenConstraint> Fresh() const = 0;
};

// Candidates are what one sampling step may choose, with weights
// proportional to their probabilities. When top-k or top-p cut, `ids` /
// `weights` list them (`sorted`: after top-k most likely first, logit
// descending and ties → lower id; after top-p by groups of rank, see
// sampler.cc); otherwise `dense` holds a weight per token id (0: not a
// candidate) and `block_mass` its sums over runs of kBlock ids, so a draw
// walks ~n/kBlock sums and one run.
struct Candidates {
  static constexpr size_t kBlock = 1024;
  bool sorted = true;              // listed in ids / weights (else dense)
  std::vector<TokenId> ids;
  std::vector<double> weights;     // parallel to ids
  std::vector<float> dense;        // !sorted: per token id
  std::vector<double> block_mass;  // !sorted: Σ dense over [kBlock·b, kBlock·(b + 1))
};

// SamplingCandidates computes the candidates of a sampler at temperature
// p.temperature > 0 from `logits` (bias and penalties already applied): the
// top_k best, then those whose probability is at least min_p × the best
// one's, then the smallest prefix, most likely first, whose share of the
// whole distribution reaches top_p. A token whose logit is −inf or NaN, or
// 80 temperatures or more below the best, is never one (its probability is
// below e^−80). No candidate when no logit is finite. Without top-k the
// vocabulary is weighed by one vectorised softmax (kernels.h SoftmaxRow) and
// min-p is a threshold: nothing is sorted unless top-p needs the most likely
// prefix, and then only as far as that prefix reaches.
void SamplingCandidates(const SamplingParams& p, std::span<const float> logits, Candidates* c);

// DrawCandidate picks the candidate at u ∈ (0, 1) of their cumulative weight
// (draw order); -1 when there is none.
TokenId DrawCandidate(const Candidates& c, double u);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Sample picks a token from `logits` (n_vocab floats; modified in place by
  // bias and penalties) given `history`: the sequence so far, whose first
  // `n_prompt` tokens are the prompt (the repetition penalty sees them, the
  // presence and frequency penalties only the generated rest).
  TokenId Sample(std::span<float> logits, std::span<const TokenId> history, size_t n_prompt = 0);

  // Next64 exposes the generator (tests).
  uint64_t Next64();

 private:
  double NextUnit();  // uniform in (0, 1): a draw never lands on a zero-width edge
  SamplingParams p_;
  uint64_t s_[4];
};

}  // namespace cllm::engine
