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
    BenchTest t{kind, 8, 2, 1, 1, KvType::kF16, 100};  // 108 of its 128 positions
    auto r = RunBenchTest(*model, t);
    ASSERT_TRUE(r.ok()) << BenchKindName(kind) << ": " << r.detail();
    EXPECT_GT(r->tokens_per_second.at(0), 0.0);
  }
}

// A test past the model's context length is refused before anything is
// mapped (a mistyped -d would otherwise allocate gigabytes of KV cache).
TEST(BenchRunTest, RefusesTestsPastTheContextLength) {
  CLLM_SHARED_PATH(path, "models/stories260K-q8_0.gguf");
  auto model = Model::Open(path).value();
  const int n_ctx = model->config().n_ctx_train;
  ASSERT_GT(n_ctx, 8);
  for (BenchKind kind : {BenchKind::kPrompt, BenchKind::kGenerate, BenchKind::kBatchDecode}) {
    BenchTest fits{kind, 8, 2, 1, 1, KvType::kF16, n_ctx - 8};
    EXPECT_TRUE(RunBenchTest(*model, fits).ok()) << BenchKindName(kind);
    BenchTest past{kind, 8, 2, 1, 1, KvType::kF16, n_ctx - 7};
    auto r = RunBenchTest(*model, past);
    ASSERT_FALSE(r.ok()) << BenchKindName(kind);
    EXPECT_EQ(r.code(), ModelErrc::kContextFull);
    EXPECT_NE(r.detail().find("context length " + std::to_string(n_ctx)), std::string::npos) << r.detail();
    EXPECT_EQ(ProfileBenchTest(*model, past).code(), ModelErrc::kContextFull);
  }
}

}  // namespace
}  // namespace cllm::engine
