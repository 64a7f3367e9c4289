#include "engine/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace cllm::engine {
namespace {

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Sampler::Sampler(const SamplingParams& p) : p_(p) {
  uint64_t x = p.seed;
  for (auto& s : s_) s = SplitMix64(x);  // xoshiro256** seeding as its authors recommend
}

uint64_t Sampler::Next64() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Sampler::NextUnit() { return static_cast<double>(Next64() >> 11) * 0x1.0p-53; }

void LogSoftmaxTop(std::span<const float> logits, int k, double* out_log_sum, std::vector<TokenLogprob>* out_top) {
  out_top->clear();
  if (logits.empty()) {
    *out_log_sum = 0;
    return;
  }
  // Two reads of the row: the max (for a stable exp), then the sum and a
  // bounded min-heap of the k best (ties: the lower id ranks higher).
  float max = logits[0];
  for (float v : logits) max = std::max(max, v);
  const size_t kk = k > 0 ? std::min(static_cast<size_t>(k), logits.size()) : 0;
  std::vector<std::pair<float, TokenId>> heap;
  heap.reserve(kk + 1);
  auto worse = [](const std::pair<float, TokenId>& a, const std::pair<float, TokenId>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };  // heap order: the worst of the kept at the front
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    sum += std::exp(static_cast<double>(v) - max);
    if (kk == 0) continue;
    std::pair<float, TokenId> c{v, static_cast<TokenId>(i)};
    if (heap.size() < kk) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), worse);
    } else if (worse(c, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), worse);
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  }
  *out_log_sum = max + std::log(sum);
  std::sort(heap.begin(), heap.end(), worse);
  for (const auto& [v, id] : heap) out_top->push_back({id, static_cast<float>(v - *out_log_sum), {}});
}

TokenId Sampler::Sample(std::span<float> logits, std::span<const TokenId> history, size_t n_prompt) {
  const int n = static_cast<int>(logits.size());
  for (const auto& [t, bias] : p_.logit_bias) {
    if (t >= 0 && t < n) logits[t] += bias;
  }
  // Repetition penalty (CTRL paper's form, as llama.cpp applies it): divide
  // positive logits, multiply negative ones, once per distinct recent token.
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
    std::unordered_set<TokenId> seen;
    size_t start = history.size() > static_cast<size_t>(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    for (size_t i = start; i < history.size(); ++i) {
      TokenId t = history[i];
      if (t < 0 || t >= n || !seen.insert(t).second) continue;
      logits[t] = logits[t] > 0 ? logits[t] / p_.repeat_penalty : logits[t] * p_.repeat_penalty;
    }
  }
  // Presence and frequency penalties (OpenAI's definition) over the tokens
  // generated so far; nothing is counted when both are off.
  if ((p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f) && n_prompt < history.size()) {
    std::unordered_map<TokenId, int> count;
    for (size_t i = n_prompt; i < history.size(); ++i) ++count[history[i]];
    for (const auto& [t, c] : count) {
      if (t < 0 || t >= n) continue;
      logits[t] -= p_.frequency_penalty * static_cast<float>(c) + p_.presence_penalty;
    }
  }
  if (p_.temperature <= 0.0f) {
    return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  cand_.clear();
  cand_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) cand_.emplace_back(logits[i], i);
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    keep = static_cast<size_t>(p_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + keep, cand_.end(), by_logit);
    cand_.resize(keep);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Probabilities at temperature T over the remaining candidates.
  std::vector<double> prob(cand_.size());
  const double max = cand_[0].first;
  double sum = 0;
  for (size_t i = 0; i < cand_.size(); ++i) sum += prob[i] = std::exp((cand_[i].first - max) / p_.temperature);
  for (auto& q : prob) q /= sum;
  // min-p: drop candidates below min_p × the top probability.
  if (p_.min_p > 0.0f) {
    size_t k = 1;
    while (k < prob.size() && prob[k] >= p_.min_p * prob[0]) ++k;
    prob.resize(k);
  }
  // top-p: the smallest prefix whose mass reaches top_p.
  if (p_.top_p < 1.0f) {
    double acc = 0;
    size_t k = 0;
    while (k < prob.size()) {
      acc += prob[k++];
      if (acc >= p_.top_p) break;
    }
    prob.resize(k);
  }
  double total = 0;
  for (double q : prob) total += q;
  double r = NextUnit() * total;
  for (size_t i = 0; i < prob.size(); ++i) {
    r -= prob[i];
    if (r < 0) return cand_[i].second;
  }
  return cand_[prob.size() - 1].second;
}

}  // namespace cllm::engine
