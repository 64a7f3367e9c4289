// Sampler: logit bias, presence and frequency penalties (OpenAI's formula,
// generated tokens only), and LogSoftmaxTop against a direct log-softmax.
#include "engine/model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

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

// A direct log-softmax in long double: the specification.
std::vector<double> LogSoftmaxRef(const std::vector<float>& logits) {
  long double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<long double>(v));
  std::vector<double> out;
  for (float v : logits) out.push_back(static_cast<double>(v - std::log(sum)));
  return out;
}

TEST(LogSoftmaxTopTest, MatchesADirectLogSoftmax) {
  std::vector<float> logits;
  for (int i = 0; i < 1000; ++i) logits.push_back(static_cast<float>(std::sin(i * 0.37) * 7.0));
  const std::vector<double> ref = LogSoftmaxRef(logits);
  double log_sum = 0;
  std::vector<TokenLogprob> top;
  LogSoftmaxTop(logits, 20, &log_sum, &top);
  ASSERT_EQ(top.size(), 20u);
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(logits[i] - log_sum, ref[i], 1e-6);
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
