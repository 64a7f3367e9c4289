// The pacer's arithmetic on given step times (no clock): off and idle cases,
// the probe before anything is timed, the allowance from the learned times,
// bounded growth, and noise that would make prompt tokens look free.
#include "engine/serve/step_pacer.h"

#include <gtest/gtest.h>

#include <limits>

namespace cllm::engine {
namespace {

constexpr int kUnlimited = std::numeric_limits<int>::max();

TEST(StepPacerTest, UnlimitedWhenOffOrNobodyDecodes) {
  StepPacer off(1.0), zero(0), on(2.0);
  EXPECT_EQ(off.Allowance(4), kUnlimited);
  EXPECT_EQ(zero.Allowance(4), kUnlimited);
  EXPECT_EQ(on.Allowance(0), kUnlimited);
}

TEST(StepPacerTest, ProbesUntilBothTimesAreKnown) {
  StepPacer p(2.0, 8);
  EXPECT_EQ(p.Allowance(3), 8);
  p.Observe(3, 8, 0.5);  // a mixed step before any decode-only one teaches nothing
  EXPECT_EQ(p.prompt_token_seconds(), 0);
  p.Observe(3, 0, 0.1);
  EXPECT_EQ(p.Allowance(3), 8);
}

TEST(StepPacerTest, AllowanceKeepsTheStepWithinTheFactor) {
  StepPacer p(1.5, 8);
  p.Observe(4, 0, 0.100);  // decode-only steps: 100 ms
  p.Observe(4, 8, 0.260);  // 8 prompt tokens added 160 ms: 20 ms each
  EXPECT_DOUBLE_EQ(p.decode_step_seconds(), 0.100);
  EXPECT_DOUBLE_EQ(p.prompt_token_seconds(), 0.020);
  EXPECT_EQ(p.Allowance(4), 2);  // 0.5 × 100 ms / 20 ms
  // Slower prompt tokens shrink it, down to one token (progress is kept).
  for (int i = 0; i < 5; ++i) p.Observe(4, 2, 0.100 + 2 * 0.2);
  EXPECT_EQ(p.Allowance(4), 1);
}

// After kRefreshSteps - 1 mixed steps one step is decode-only, and what it
// measures (the streams' steps grew with their context) raises the allowance.
TEST(StepPacerTest, EveryFewStepsOneIsDecodeOnly) {
  StepPacer p(2.0, 4);
  p.Observe(4, 0, 0.100);
  p.Observe(4, 4, 0.180);  // 20 ms per prompt token
  for (int i = 1; i < StepPacer::kRefreshSteps - 1; ++i) {
    EXPECT_GE(p.Allowance(4), 1);
    p.Observe(4, 4, 0.180);
  }
  EXPECT_EQ(p.Allowance(4), 0);
  for (int i = 0; i < 8; ++i) p.Observe(4, 0, 0.200);  // decode steps now cost 200 ms
  EXPECT_GT(p.decode_step_seconds(), 0.18);
  EXPECT_GE(p.Allowance(4), 8);
}

TEST(StepPacerTest, GrowsAtMostTwofoldPerStep) {
  StepPacer p(2.0, 4);
  p.Observe(1, 0, 0.050);
  EXPECT_EQ(p.Allowance(1), 4);  // the probe
  p.Observe(1, 4, 0.0504);       // prompt tokens look almost free
  EXPECT_EQ(p.Allowance(1), 8);
  p.Observe(1, 8, 0.0508);
  EXPECT_EQ(p.Allowance(1), 16);
}

TEST(StepPacerTest, NoiseNeverMakesPromptTokensFree) {
  StepPacer p(2.0, 4);
  p.Observe(2, 0, 0.100);
  p.Observe(2, 4, 0.080);  // faster than a decode-only step: noise
  EXPECT_GT(p.prompt_token_seconds(), 0);
  EXPECT_GE(p.Allowance(2), 1);
  p.Observe(2, 4, std::numeric_limits<double>::quiet_NaN());  // ignored
  EXPECT_GT(p.prompt_token_seconds(), 0);
}

TEST(StepPacerTest, PrefillOnlyStepsSeedThePromptTokenTime) {
  StepPacer p(2.0, 4);
  p.Observe(0, 100, 1.0);
  EXPECT_DOUBLE_EQ(p.prompt_token_seconds(), 0.01);
  p.Observe(2, 0, 0.05);
  EXPECT_EQ(p.Allowance(2), 5);  // 1 × 50 ms / 10 ms
}

}  // namespace
}  // namespace cllm::engine
