#include "engine/bench/bench.h"

#include <gtest/gtest.h>

#include "support/shared_data.h"

namespace cllm::engine {
namespace {

TEST(BenchArgsTest, ParsesIntLists) {
  EXPECT_EQ(ParseIntList("1"), (std::vector<int>{1}));
  EXPECT_EQ(ParseIntList("1,2,16"), (std::vector<int>{1, 2, 16}));
  EXPECT_EQ(ParseIntList(""), std::nullopt);
  EXPECT_EQ(ParseIntList("1,"), std::nullopt);
  EXPECT_EQ(ParseIntList(",1"), std::nullopt);
  EXPECT_EQ(ParseIntList("1,,2"), std::nullopt);
  EXPECT_EQ(ParseIntList("0"), std::nullopt);
  EXPECT_EQ(ParseIntList("-1"), std::nullopt);
  EXPECT_EQ(ParseIntList("2x"), std::nullopt);
  EXPECT_EQ(ParseIntList(" 2"), std::nullopt);
  EXPECT_EQ(ParseIntList("99999999999"), std::nullopt);
  EXPECT_EQ(ParseIntList("9", 8), std::nullopt);
}

TEST(BenchArgsTest, MeanAndSampleSd) {
  MeanSd s = ComputeMeanSd({2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0});
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_NEAR(s.sd, 2.138089935, 1e-9);  // sqrt(32 / 7)
  EXPECT_EQ(ComputeMeanSd({3.0}).sd, 0.0);
  EXPECT_EQ(ComputeMeanSd({}).mean, 0.0);
}

// Every kind runs end to end on a small real model, one sample per
// repetition; labels read as llama-bench prints them.
TEST(BenchRunTest, RunsEachKindOnASmallModel) {
  CLLM_SHARED_PATH(path, "models/stories260K-q8_0.gguf");
  auto model = Model::Open(path).value();
  for (const BenchTest& t : {BenchTest{BenchKind::kPrompt, 16, 1, 1, 2, KvType::kF16},
                             BenchTest{BenchKind::kGenerate, 8, 1, 1, 2, KvType::kF16},
                             BenchTest{BenchKind::kBatchDecode, 4, 3, 1, 2, KvType::kF32}}) {
    auto r = RunBenchTest(*model, t);
    ASSERT_TRUE(r.ok()) << r.detail();
    ASSERT_EQ(r->tokens_per_second.size(), 2u);
    for (double v : r->tokens_per_second) EXPECT_GT(v, 0.0);
  }
  BenchResult r;
  r.test = {BenchKind::kBatchDecode, 32, 8, 1, 1, KvType::kF16};
  EXPECT_EQ(r.Label(), "b8 tg32");
  r.test.kind = BenchKind::kPrompt;
  EXPECT_EQ(r.Label(), "pp32");
  r.test.depth = 100;
  EXPECT_EQ(r.Label(), "pp32@d100");
}

// -d: the timed part starts after `depth` positions of every sequence.
TEST(BenchRunTest, DepthFillsTheCacheFirst) {
  CLLM_SHARED_PATH(path, "models/stories260K-q8_0.gguf");
  auto model = Model::Open(path).value();
  for (BenchKind kind : {BenchKind::kPrompt, BenchKind::kGenerate, BenchKind::kBatchDecode}) {
    BenchTest t{kind, 8, 2, 1, 1, KvType::kF16, 200};
    auto r = RunBenchTest(*model, t);
    ASSERT_TRUE(r.ok()) << BenchKindName(kind) << ": " << r.detail();
    EXPECT_GT(r->tokens_per_second.at(0), 0.0);
  }
}

}  // namespace
}  // namespace cllm::engine
