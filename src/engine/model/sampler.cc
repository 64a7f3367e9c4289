#include "engine/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "engine/kernels/kernels.h"

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

// ((x >> 11) + ½) · 2⁻⁵³: 53 random bits, centred, so never 0 (a draw of 0
// would pick the first candidate however small its weight) and never 1.
double Sampler::NextUnit() { return (static_cast<double>(Next64() >> 11) + 0.5) * 0x1.0p-53; }

namespace {

// Argmax is the first id of the largest logit; NaN never wins; 0 when no
// logit is above −inf. Eight running maxima (vectorised), then the first id
// holding the maximum.
TokenId Argmax(std::span<const float> logits) {
  const size_t n = logits.size();
  const float* v = logits.data();
  float m[8];
  for (float& x : m) x = -std::numeric_limits<float>::infinity();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) m[k] = v[i + k] > m[k] ? v[i + k] : m[k];
  }
  float max = m[0];
  for (int k = 1; k < 8; ++k) max = m[k] > max ? m[k] : max;
  for (; i < n; ++i) max = v[i] > max ? v[i] : max;
  if (!(max > -std::numeric_limits<float>::infinity())) return 0;
  for (i = 0; i < n; ++i) {
    if (v[i] == max) return static_cast<TokenId>(i);
  }
  return 0;
}

// Ranked is a token with its logit: sorting these reads contiguous memory.
struct Ranked {
  float logit;
  TokenId id;
};
inline bool Ahead(const Ranked& a, const Ranked& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

// TopK puts the k best of the tokens `admit` lets in (and whose logit is
// above −inf) into *out, best first. Small k: a bounded heap, worst kept at
// its front; tokens come in ascending ids, so one must beat the front's logit
// strictly — one comparison for most. Large k: a selection over all of them.
template <typename Admit>
void TopK(std::span<const float> logits, size_t k, Admit admit, std::vector<Ranked>* out) {
  out->clear();
  if (k == 0) return;
  const float* v = logits.data();
  if (k * 16 < logits.size()) {
    out->reserve(k + 1);
    float bar = -std::numeric_limits<float>::infinity();  // the front's logit once the heap is full
    for (size_t i = 0; i < logits.size(); ++i) {
      if (!(v[i] > bar) || !admit(i)) continue;
      const Ranked r{v[i], static_cast<TokenId>(i)};
      if (out->size() == k) {
        std::pop_heap(out->begin(), out->end(), Ahead);
        out->back() = r;
      } else {
        out->push_back(r);
      }
      std::push_heap(out->begin(), out->end(), Ahead);
      if (out->size() == k) bar = out->front().logit;
    }
    std::sort_heap(out->begin(), out->end(), Ahead);
    return;
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    if (v[i] > -std::numeric_limits<float>::infinity() && admit(i)) out->push_back({v[i], static_cast<TokenId>(i)});
  }
  if (out->size() > k) {
    std::nth_element(out->begin(), out->begin() + static_cast<ptrdiff_t>(k), out->end(), Ahead);
    out->resize(k);
  }
  std::sort(out->begin(), out->end(), Ahead);
}

constexpr float kCutTemperatures = 80.0f;  // e^−80 ≈ 1.8e−35: never drawn from a double's 53 random bits

// TopKCandidates: the k best sorted, their weights in double, then min-p and
// top-p cut the sorted list's tail.
void TopKCandidates(const SamplingParams& p, std::span<const float> logits, Candidates* c) {
  std::vector<Ranked> best;
  TopK(logits, static_cast<size_t>(p.top_k), [](size_t) { return true; }, &best);
  if (best.empty()) return;
  const double max = best.front().logit;
  double sum = 0;
  for (const Ranked& r : best) {
    const double y = (r.logit - max) / p.temperature;
    if (!(y > -kCutTemperatures)) break;  // sorted: every later one is further below
    c->ids.push_back(r.id);
    c->weights.push_back(std::exp(y));
    sum += c->weights.back();
  }
  size_t keep = c->weights.size();
  if (p.min_p > 0.0f) {
    size_t k = 1;
    while (k < keep && c->weights[k] >= p.min_p * c->weights[0]) ++k;
    keep = k;
  }
  if (p.top_p < 1.0f) {
    double acc = 0;
    size_t k = 0;
    while (k < keep) {
      acc += c->weights[k++] / sum;
      if (acc >= p.top_p) break;
    }
    keep = k;
  }
  c->weights.resize(keep);
  c->ids.resize(keep);
}

// TopPPrefix turns dense candidates into the smallest most-likely-first
// prefix holding `target` of the mass. The 64 best first (a bounded heap:
// enough for a trained model's peaked row, and then listed in rank order).
// Past them, one pass sums the weights into 4096 buckets of logit (ranks
// never cross buckets), the buckets from the top find the one where the
// prefix ends, and only that bucket is sorted: the prefix is listed bucket by
// bucket, in id order within each but the last.
void TopPPrefix(std::span<const float> logits, double target, Candidates* c) {
  const float* w = c->dense.data();
  const auto candidate = [w](size_t i) { return w[i] > 0; };
  std::vector<Ranked> ranked;
  TopK(logits, 64, candidate, &ranked);
  double acc = 0;
  size_t keep = 0;
  for (size_t i = 0; i < ranked.size() && keep == 0; ++i) {
    acc += w[ranked[i].id];
    if (acc >= target) keep = i + 1;
  }
  if (keep == 0 && ranked.size() == 64) {  // a flat row: more than 64 to go
    constexpr size_t kBuckets = 4096;
    const float hi = ranked.front().logit;
    float lo = hi;
    for (size_t i = 0; i < c->dense.size(); ++i) lo = candidate(i) && logits[i] < lo ? logits[i] : lo;
    const float scale = hi > lo ? static_cast<float>(kBuckets) / (hi - lo) : 0.0f;  // (hi − lo may be inf: scale 0)
    const auto bucket = [&](size_t i) { return std::min(kBuckets - 1, static_cast<size_t>((hi - logits[i]) * scale)); };
    std::vector<double> mass(kBuckets, 0.0);
    for (size_t i = 0; i < c->dense.size(); ++i) {
      if (candidate(i)) mass[bucket(i)] += w[i];
    }
    acc = 0;
    size_t edge = 0;
    while (edge + 1 < kBuckets && acc + mass[edge] < target) acc += mass[edge++];
    ranked.clear();
    std::vector<Ranked> last;
    for (size_t i = 0; i < c->dense.size(); ++i) {
      if (!candidate(i)) continue;
      const size_t b = bucket(i);
      if (b < edge) ranked.push_back({logits[i], static_cast<TokenId>(i)});
      if (b == edge) last.push_back({logits[i], static_cast<TokenId>(i)});
    }
    std::sort(last.begin(), last.end(), Ahead);
    keep = 0;
    for (size_t i = 0; i < last.size() && keep == 0; ++i) {
      ranked.push_back(last[i]);
      acc += w[last[i].id];
      if (acc >= target) keep = ranked.size();
    }
  }
  if (keep == 0) keep = ranked.size();  // rounding: the whole row did not quite reach the target
  c->ids.reserve(keep);
  c->weights.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    c->ids.push_back(ranked[i].id);
    c->weights.push_back(w[static_cast<size_t>(ranked[i].id)]);
  }
  c->sorted = true;
}

}  // namespace

void SamplingCandidates(const SamplingParams& p, std::span<const float> logits, Candidates* c) {
  c->sorted = true;
  c->ids.clear();
  c->weights.clear();
  c->block_mass.clear();
  if (logits.empty()) return;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < logits.size()) return TopKCandidates(p, logits, c);
  const TokenId top = Argmax(logits);
  const float max = logits[static_cast<size_t>(top)];
  if (!(max > -std::numeric_limits<float>::infinity())) return;
  if (max == std::numeric_limits<float>::infinity()) {  // an infinite logit is certain
    c->ids.push_back(top);
    c->weights.push_back(1.0);
    return;
  }
  // Weights: softmax of (logit − max) / T; −inf and NaN become −inf, whose
  // weight (the kernel's e^−87 floor) falls under the cut below.
  const size_t n = logits.size();
  const float inv_t = 1.0f / p.temperature;
  c->dense.resize(n);
  float* w = c->dense.data();
  for (size_t i = 0; i < n; ++i) {
    const float y = (logits[i] - max) * inv_t;
    w[i] = y > -kCutTemperatures ? y : -std::numeric_limits<float>::infinity();
  }
  SoftmaxRow(w, static_cast<int64_t>(n));
  // The best token's weight is e^0 / Σ: min-p and the cut are multiples of it.
  const float cut = w[top] * std::exp(-kCutTemperatures), floor = std::max(cut, w[top] * p.min_p);
  c->block_mass.resize((n + Candidates::kBlock - 1) / Candidates::kBlock);
  double full = 0;  // the whole distribution's mass, min-p's drops included (top-p is a share of it)
  for (size_t b = 0; b < c->block_mass.size(); ++b) {
    const size_t lo = b * Candidates::kBlock, hi = std::min(n, lo + Candidates::kBlock);
    float all[8] = {}, kept[8] = {};
    size_t i = lo;
    for (; i + 8 <= hi; i += 8) {
      for (int k = 0; k < 8; ++k) {
        const float x = w[i + k] >= cut ? w[i + k] : 0.0f;
        all[k] += x;
        w[i + k] = x >= floor ? x : 0.0f;
        kept[k] += w[i + k];
      }
    }
    double mass = 0;
    for (; i < hi; ++i) {
      const float x = w[i] >= cut ? w[i] : 0.0f;
      full += x;
      w[i] = x >= floor ? x : 0.0f;
      mass += w[i];
    }
    for (int k = 0; k < 8; ++k) full += all[k], mass += kept[k];
    c->block_mass[b] = mass;
  }
  c->sorted = false;
  if (p.top_p < 1.0f) TopPPrefix(logits, p.top_p * full, c);
}

TokenId DrawCandidate(const Candidates& c, double u) {
  if (c.sorted) {
    if (c.ids.empty()) return -1;
    double total = 0;
    for (double q : c.weights) total += q;
    double r = u * total;
    for (size_t i = 0; i < c.ids.size(); ++i) {
      r -= c.weights[i];
      if (r < 0) return c.ids[i];
    }
    return c.ids.back();
  }
  double total = 0;
  for (double m : c.block_mass) total += m;
  double r = u * total;
  size_t b = 0;
  while (b + 1 < c.block_mass.size() && r >= c.block_mass[b]) r -= c.block_mass[b++];
  TokenId last = -1;
  for (size_t i = b * Candidates::kBlock; i < c.dense.size(); ++i) {
    if (!(c.dense[i] > 0)) continue;
    last = static_cast<TokenId>(i);
    r -= c.dense[i];
    if (r < 0) return last;
  }
  for (size_t i = b * Candidates::kBlock; last < 0 && i-- > 0;) {  // rounding ran past the last candidate
    if (c.dense[i] > 0) last = static_cast<TokenId>(i);
  }
  return last;
}

// One vectorised softmax of (logit − max) gives w_i = e_i / S' with S' the
// kernel's float sum; the best token's w is e^0 / S' = 1 / S', so the true
// Σ e_i = Σ w_i / w_best, summed here in double: log Σ e^logit is
// max + log Σ w_i − log w_best, to a few float roundings (the float sum's
// error cancels).
void LogSoftmaxTop(std::span<const float> logits, int k, double* out_log_sum, std::vector<TokenLogprob>* out_top) {
  out_top->clear();
  *out_log_sum = 0;
  if (logits.empty()) return;
  const TokenId top = Argmax(logits);
  const float max = logits[static_cast<size_t>(top)];
  if (!std::isfinite(max)) {  // no finite logit, or an infinite one: the direct formula
    double sum = 0;
    for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
    *out_log_sum = max + std::log(sum);
  } else {
    thread_local std::vector<float> w;
    w.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) w[i] = logits[i] - max;
    SoftmaxRow(w.data(), static_cast<int64_t>(w.size()));
    double part[4] = {};
    size_t i = 0;
    for (; i + 4 <= w.size(); i += 4) {
      for (int j = 0; j < 4; ++j) part[j] += w[i + static_cast<size_t>(j)];
    }
    for (; i < w.size(); ++i) part[0] += w[i];
    *out_log_sum = max + std::log((part[0] + part[1]) + (part[2] + part[3])) - std::log(static_cast<double>(w[top]));
  }
  if (k <= 0) return;
  std::vector<Ranked> best;
  TopK(logits, static_cast<size_t>(k), [](size_t) { return true; }, &best);
  for (const Ranked& r : best) out_top->push_back({r.id, static_cast<float>(r.logit - *out_log_sum), {}});
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
  if (p_.temperature <= 0.0f) return Argmax(logits);
  // One buffer per thread, not per sequence: a vocabulary's weights are
  // 600 KB, and a server holds thousands of sequences (each pool worker
  // samples one at a time, scheduler.cc).
  thread_local Candidates cand;
  SamplingCandidates(p_, logits, &cand);
  const TokenId t = DrawCandidate(cand, NextUnit());
  return t >= 0 ? t : Argmax(logits);  // no finite logit: nothing to weigh
}

}  // namespace cllm::engine
