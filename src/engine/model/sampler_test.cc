// Sampler: logit bias, presence and frequency penalties (OpenAI's formula,
// generated tokens only), the candidates temperature / top-k / min-p / top-p
// leave against a plain full-sort specification (every ISA's softmax), draws
// against their probabilities, and LogSoftmaxTop against a direct log-softmax.
#include "engine/model/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "engine/kernels/kernels.h"

namespace cllm::engine {
namespace {

// Greedy sampling reveals which logit the adjustments left highest.
SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(SamplerTest, LogitBiasMovesTheArgmax) {
  std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.0f};
  SamplingParams p = Greedy();
  p.logit_bias = {{0, 5.0f}, {1, -100.0f}};
  Sampler s(p);
  EXPECT_EQ(s.Sample(logits, {}), 0);
  EXPECT_FLOAT_EQ(logits[0], 5.0f);
  EXPECT_FLOAT_EQ(logits[1], -97.0f);
}

TEST(SamplerTest, LogitBiasIgnoresIdsOutsideTheRow) {
  std::vector<float> logits = {1.0f, 2.0f};
  SamplingParams p = Greedy();
  p.logit_bias = {{-1, 50.0f}, {2, 50.0f}};
  Sampler s(p);
  EXPECT_EQ(s.Sample(logits, {}), 1);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
}

TEST(SamplerTest, FrequencyAndPresencePenaltiesCountGeneratedTokensOnly) {
  // history: prompt {2, 2, 2} then generated {1, 1, 3}.
  const std::vector<TokenId> history = {2, 2, 2, 1, 1, 3};
  std::vector<float> logits = {0.0f, 10.0f, 10.0f, 10.0f};
  SamplingParams p = Greedy();
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 1.5f;
  Sampler s(p);
  EXPECT_EQ(s.Sample(logits, history, /*n_prompt=*/3), 2);
  EXPECT_FLOAT_EQ(logits[0], 0.0f);                // never generated
  EXPECT_FLOAT_EQ(logits[1], 10.0f - 2 * 0.5f - 1.5f);
  EXPECT_FLOAT_EQ(logits[2], 10.0f);               // only in the prompt
  EXPECT_FLOAT_EQ(logits[3], 10.0f - 0.5f - 1.5f);
}

TEST(SamplerTest, NegativePenaltiesEncourageRepetition) {
  const std::vector<TokenId> history = {0, 3};
  std::vector<float> logits = {0.0f, 1.0f, 1.0f, 0.5f};
  SamplingParams p = Greedy();
  p.presence_penalty = -2.0f;
  Sampler s(p);
  EXPECT_EQ(s.Sample(logits, history, 1), 3);
  EXPECT_FLOAT_EQ(logits[3], 2.5f);
  EXPECT_FLOAT_EQ(logits[0], 0.0f);  // in the prompt: untouched
}

TEST(SamplerTest, PenaltiesOffLeaveTheRowAlone) {
  const std::vector<TokenId> history = {1, 1, 1};
  std::vector<float> logits = {0.25f, 1.0f};
  Sampler s(Greedy());
  EXPECT_EQ(s.Sample(logits, history, 0), 1);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
}

// The specification of the candidates: every token sorted (logit descending,
// ties → lower id), probabilities at temperature T in long double over the
// top-k, min-p against the best, the smallest prefix reaching top-p; tokens
// 80 temperatures or more below the best (−inf, NaN) excluded. Returns id →
// probability normalised over what is kept. SpecOrder is that order.
std::vector<TokenId> SpecOrder(const std::vector<float>& logits) {
  std::vector<TokenId> ids;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > -std::numeric_limits<float>::infinity()) ids.push_back(static_cast<TokenId>(i));
  }
  std::stable_sort(ids.begin(), ids.end(), [&](TokenId a, TokenId b) { return logits[a] > logits[b]; });
  return ids;
}

std::map<TokenId, double> SpecCandidates(const SamplingParams& p, const std::vector<float>& logits,
                                         std::vector<TokenId> ids) {
  if (p.top_k > 0 && ids.size() > static_cast<size_t>(p.top_k)) ids.resize(static_cast<size_t>(p.top_k));
  std::map<TokenId, double> out;
  if (ids.empty()) return out;
  const long double max = logits[ids[0]];
  std::vector<long double> prob;
  long double sum = 0;
  for (TokenId t : ids) {
    const long double y = (logits[t] - max) / p.temperature;
    if (y <= -80) break;
    prob.push_back(std::exp(y));
    sum += prob.back();
  }
  size_t keep = prob.size();
  while (p.min_p > 0 && keep > 1 && prob[keep - 1] < p.min_p * prob[0]) --keep;
  if (p.top_p < 1) {
    long double acc = 0;
    size_t k = 0;
    while (k < keep) {
      acc += prob[k++] / sum;
      if (acc >= p.top_p) break;
    }
    keep = k;
  }
  long double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += prob[i];
  for (size_t i = 0; i < keep; ++i) out[ids[i]] = static_cast<double>(prob[i] / kept);
  return out;
}

std::vector<float> RandomLogits(size_t n, float spread, bool integers, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> v(n);
  for (auto& x : v) x = integers ? std::round(normal(rng)) : normal(rng);
  return v;
}

// Normalised: a candidate set as id → probability.
std::map<TokenId, double> Normalised(const Candidates& c) {
  std::map<TokenId, double> out;
  double total = 0;
  if (c.sorted) {
    for (size_t i = 0; i < c.ids.size(); ++i) out[c.ids[i]] = c.weights[i], total += c.weights[i];
  } else {
    for (size_t i = 0; i < c.dense.size(); ++i) {
      if (c.dense[i] > 0) out[static_cast<TokenId>(i)] = c.dense[i], total += c.dense[i];
    }
  }
  for (auto& [t, q] : out) q /= total;
  return out;
}

class SamplingCandidatesTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { SetActiveIsa(GetParam()); }
  void TearDown() override { SetActiveIsa(saved_); }
  Isa saved_ = ActiveIsa();
};

TEST_P(SamplingCandidatesTest, MatchTheFullSortSpecification) {
  std::mt19937 rng(7);
  Candidates c;
  int cases = 0;
  for (size_t n : {1u, 2u, 9u, 100u, 3001u, 151936u}) {
    for (float spread : {0.5f, 4.0f}) {
      for (bool integers : {false, true}) {
        std::vector<float> logits = RandomLogits(n, spread, integers, rng);
        if (n > 2) {  // masked tokens (a grammar's −inf, a NaN from a broken row) are never candidates
          logits[n / 3] = -std::numeric_limits<float>::infinity();
          logits[n / 2] = std::numeric_limits<float>::quiet_NaN();
        }
        const std::vector<TokenId> order = SpecOrder(logits);
        for (float temp : {0.06f, 0.7f, 1.0f, 1.9f}) {
          if (n == 151936 && (temp == 0.7f || spread == 0.5f)) continue;  // a real vocabulary's size: fewer cases
          for (int top_k : {0, 1, 5, 40, static_cast<int>(n) - 1, static_cast<int>(n) + 3}) {
            for (float min_p : {0.0f, 0.05f}) {
              for (float top_p : {1.0f, 0.93f, 0.37f}) {
                if (n == 151936 && !(top_k == 0 || top_k == 40)) continue;
                SamplingParams p;
                p.temperature = temp, p.top_k = top_k, p.min_p = min_p, p.top_p = top_p;
                SCOPED_TRACE(::testing::Message() << "n " << n << " spread " << spread << " integers " << integers
                                                  << " T " << temp << " top_k " << top_k << " min_p " << min_p
                                                  << " top_p " << top_p);
                const std::map<TokenId, double> spec = SpecCandidates(p, logits, order);
                SamplingCandidates(p, logits, &c);
                // Listed exactly when something was cut by rank; most likely first after top-k.
                EXPECT_EQ(c.sorted, (top_k > 0 && static_cast<size_t>(top_k) < n) || top_p < 1.0f);
                if (c.sorted && top_p == 1.0f) {
                  for (size_t i = 1; i < c.ids.size(); ++i) {
                    ASSERT_TRUE(logits[c.ids[i - 1]] > logits[c.ids[i]] ||
                                (logits[c.ids[i - 1]] == logits[c.ids[i]] && c.ids[i - 1] < c.ids[i]));
                  }
                }
                const std::map<TokenId, double> got = Normalised(c);
                ASSERT_EQ(got.size(), spec.size());
                for (const auto& [t, q] : got) {
                  auto it = spec.find(t);
                  ASSERT_NE(it, spec.end()) << "token " << t << " is not a candidate";
                  EXPECT_NEAR(q, it->second, 1e-5 * it->second + 1e-12) << "token " << t;
                }
                ++cases;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 900);
}

TEST_P(SamplingCandidatesTest, NothingFiniteLeavesNoCandidateAndGreedyFallsBackToTheFirstId) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> logits = {-inf, std::numeric_limits<float>::quiet_NaN(), -inf};
  SamplingParams p;
  p.temperature = 1.0f;
  Candidates c;
  c.ids = {5};
  c.weights = {1.0};
  SamplingCandidates(p, logits, &c);
  EXPECT_TRUE(Normalised(c).empty());
  EXPECT_EQ(DrawCandidate(c, 0.5), -1);
  Sampler s(p);
  EXPECT_EQ(s.Sample(logits, {}), 0);
  // An infinite logit is certain.
  logits = {0.0f, inf, 3.0f};
  SamplingCandidates(p, logits, &c);
  EXPECT_EQ(Normalised(c), (std::map<TokenId, double>{{1, 1.0}}));
  EXPECT_EQ(DrawCandidate(c, 0.999), 1);
}

INSTANTIATE_TEST_SUITE_P(Isas, SamplingCandidatesTest, ::testing::ValuesIn(AvailableIsas()),
                         [](const auto& p) { return std::string(IsaName(p.param)); });

// ExpectDrawRates samples `draws` times from a fixed seed: every count within
// 5 standard deviations of its expectation under the specification
// (deterministic: the generator is ours and seeded), never a token outside
// the candidates.
void ExpectDrawRates(const SamplingParams& p, const std::vector<float>& logits, int draws) {
  const std::map<TokenId, double> spec = SpecCandidates(p, logits, SpecOrder(logits));
  Sampler s(p);
  std::map<TokenId, int> count;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> row = logits;
    ++count[s.Sample(row, {})];
  }
  for (const auto& [t, n] : count) EXPECT_TRUE(spec.count(t)) << "token " << t << " drawn but not a candidate";
  for (const auto& [t, q] : spec) {
    const double expect = q * draws, sd = std::sqrt(draws * q * (1 - q));
    EXPECT_NEAR(count[t], expect, 5 * sd + 1) << "token " << t;
  }
}

TEST(SamplerTest, DrawsFollowTheCandidateProbabilities) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, -1.0f, 3.0f, -std::numeric_limits<float>::infinity(), 0.0f, 2.0f};
  for (int mode = 0; mode < 3; ++mode) {
    SamplingParams p;
    p.temperature = 0.8f;
    p.seed = 42 + static_cast<uint64_t>(mode);
    if (mode == 1) p.top_k = 4;
    if (mode == 2) p.top_p = 0.8f, p.min_p = 0.1f;
    SCOPED_TRACE(mode);
    ExpectDrawRates(p, logits, 200000);
  }
}

// Without a cut the draw walks per-block sums, then one block: candidates on
// both sides of block edges, in the first and the last (short) block, are
// drawn at their rates, and the extreme draws land on the first and the last
// candidate, never on a token that is not one.
TEST(SamplerTest, DenseDrawsAcrossBlocks) {
  const size_t kB = Candidates::kBlock;
  std::vector<float> logits(4 * kB + 37, -200.0f);  // 80+ temperatures below: not candidates
  const std::vector<size_t> picks = {3, kB - 1, kB, 2 * kB + 5, 4 * kB + 36};
  for (size_t i = 0; i < picks.size(); ++i) logits[picks[i]] = 1.0f + 0.25f * static_cast<float>(i);
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 9;
  Candidates c;
  SamplingCandidates(p, logits, &c);
  ASSERT_FALSE(c.sorted);
  const std::map<TokenId, double> spec = SpecCandidates(p, logits, SpecOrder(logits));
  ASSERT_EQ(spec.size(), picks.size());
  EXPECT_EQ(DrawCandidate(c, 0x1.0p-54), 3);
  EXPECT_EQ(DrawCandidate(c, 1.0 - 0x1.0p-54), static_cast<TokenId>(4 * kB + 36));
  ExpectDrawRates(p, logits, 100000);
}

TEST(SamplerTest, TheSameSeedDrawsTheSameTokens) {
  std::mt19937 rng(3);
  const std::vector<float> logits = RandomLogits(5000, 2.0f, false, rng);
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  p.seed = 1234;
  Sampler a(p), b(p);
  p.seed = 1235;
  Sampler c(p);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    std::vector<float> ra = logits, rb = logits, rc = logits;
    const TokenId ta = a.Sample(ra, {});
    EXPECT_EQ(ta, b.Sample(rb, {}));
    differ += ta != c.Sample(rc, {});
  }
  EXPECT_GT(differ, 50);  // another seed, other tokens (a flat row of 5000)
}

// A direct log-softmax in long double: the specification.
std::vector<double> LogSoftmaxRef(const std::vector<float>& logits) {
  long double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<long double>(v));
  std::vector<double> out;
  for (float v : logits) out.push_back(static_cast<double>(v - std::log(sum)));
  return out;
}

// Every ISA's softmax, a small row and a real vocabulary's (151,936: the
// float sum inside the kernel must not show in the normaliser).
TEST(LogSoftmaxTopTest, MatchesADirectLogSoftmax) {
  const Isa saved = ActiveIsa();
  for (Isa isa : AvailableIsas()) {
    SetActiveIsa(isa);
    for (int n : {1000, 151936}) {
      SCOPED_TRACE(::testing::Message() << IsaName(isa) << " n " << n);
      std::vector<float> logits;
      for (int i = 0; i < n; ++i) logits.push_back(static_cast<float>(std::sin(i * 0.37) * 7.0));
      const std::vector<double> ref = LogSoftmaxRef(logits);
      double log_sum = 0;
      std::vector<TokenLogprob> top;
      LogSoftmaxTop(logits, 20, &log_sum, &top);
      ASSERT_EQ(top.size(), 20u);
      for (size_t i = 0; i < logits.size(); i += 97) ASSERT_NEAR(logits[i] - log_sum, ref[i], 1e-6) << i;
      // The top 20 are the 20 largest, descending, each with its reference logprob.
      std::vector<int> ids(logits.size());
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i);
      std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return logits[a] > logits[b]; });
      for (size_t r = 0; r < top.size(); ++r) {
        EXPECT_EQ(top[r].token, ids[r]) << "rank " << r;
        EXPECT_NEAR(top[r].logprob, ref[static_cast<size_t>(ids[r])], 1e-5);
        if (r > 0) {
          EXPECT_GE(top[r - 1].logprob, top[r].logprob);
        }
      }
    }
  }
  SetActiveIsa(saved);
}

TEST(LogSoftmaxTopTest, TiesRankTheLowerIdFirstAndLargeLogitsStayFinite) {
  const std::vector<float> logits = {1000.0f, 1000.0f, -1000.0f, 1000.0f};
  double log_sum = 0;
  std::vector<TokenLogprob> top;
  LogSoftmaxTop(logits, 3, &log_sum, &top);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 0);
  EXPECT_EQ(top[1].token, 1);
  EXPECT_EQ(top[2].token, 3);
  EXPECT_NEAR(top[0].logprob, -std::log(3.0), 1e-6);
  EXPECT_TRUE(std::isfinite(log_sum));
}

TEST(LogSoftmaxTopTest, ZeroAlternativesStillGivesTheNormaliser) {
  const std::vector<float> logits = {0.0f, 0.0f};
  double log_sum = 0;
  std::vector<TokenLogprob> top = {{7, 1.0f, "x"}};
  LogSoftmaxTop(logits, 0, &log_sum, &top);
  EXPECT_TRUE(top.empty());
  EXPECT_NEAR(log_sum, std::log(2.0), 1e-9);
}

}  // namespace
}  // namespace cllm::engine
