// Per-tensor type rules (llama.cpp's, see quant_plan.h).
#include "engine/quant/quant_plan.h"

#include <gtest/gtest.h>

namespace cllm::engine {
namespace {

TEST(QuantPlanTest, UseMoreBitsPicksHalfOfQwen3Layers) {
  // 28 layers: the first 3, the last 4, and every third layer in between.
  std::vector<int> picked;
  for (int i = 0; i < 28; ++i) {
    if (UseMoreBits(i, 28)) picked.push_back(i);
  }
  EXPECT_EQ(picked, (std::vector<int>{0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27}));
  // 5 layers (stories260K): n/8 = 0, so only layer 4 (last eighth) and 2.
  picked.clear();
  for (int i = 0; i < 5; ++i) {
    if (UseMoreBits(i, 5)) picked.push_back(i);
  }
  EXPECT_EQ(picked, (std::vector<int>{2, 4}));
}

std::optional<GgmlType> Q4KM(std::string_view name, std::vector<int64_t> ne, bool has_output = false) {
  return ChooseTensorType(QuantScheme::kQ4_K_M, {name, std::move(ne), 28, has_output});
}

TEST(QuantPlanTest, Q4_K_MRuleOnQwen3Shapes) {
  EXPECT_EQ(Q4KM("token_embd.weight", {1024, 151936}), GgmlType::kQ6_K);  // tied: the output projection
  EXPECT_EQ(Q4KM("token_embd.weight", {1024, 151936}, true), GgmlType::kQ4_K);
  EXPECT_EQ(Q4KM("output.weight", {1024, 151936}, true), GgmlType::kQ6_K);
  EXPECT_EQ(Q4KM("blk.0.attn_q.weight", {1024, 2048}), GgmlType::kQ4_K);
  EXPECT_EQ(Q4KM("blk.0.attn_k.weight", {1024, 1024}), GgmlType::kQ4_K);
  EXPECT_EQ(Q4KM("blk.0.attn_v.weight", {1024, 1024}), GgmlType::kQ6_K);
  EXPECT_EQ(Q4KM("blk.3.attn_v.weight", {1024, 1024}), GgmlType::kQ4_K);
  EXPECT_EQ(Q4KM("blk.5.attn_v.weight", {1024, 1024}), GgmlType::kQ6_K);
  EXPECT_EQ(Q4KM("blk.27.ffn_down.weight", {3072, 1024}), GgmlType::kQ6_K);
  EXPECT_EQ(Q4KM("blk.26.ffn_up.weight", {1024, 3072}), GgmlType::kQ4_K);
  EXPECT_EQ(Q4KM("blk.4.ffn_down.weight", {3072, 1024}), GgmlType::kQ4_K);
  EXPECT_EQ(Q4KM("blk.0.attn_output.weight", {2048, 1024}), GgmlType::kQ4_K);
  EXPECT_EQ(Q4KM("blk.0.attn_norm.weight", {1024}), std::nullopt);
  EXPECT_EQ(Q4KM("blk.0.attn_q_norm.weight", {128}), std::nullopt);
}

TEST(QuantPlanTest, FallbacksForNarrowRows) {
  EXPECT_EQ(Q4KM("blk.0.attn_q.weight", {64, 64}), GgmlType::kQ5_0);     // Q4_K needs 256
  EXPECT_EQ(Q4KM("blk.2.attn_v.weight", {64, 32}), GgmlType::kQ8_0);     // Q6_K needs 256
  EXPECT_EQ(Q4KM("blk.0.ffn_down.weight", {172, 64}), GgmlType::kF16);   // not even 32
  EXPECT_EQ(Q4KM("output.weight", {64, 512}, true), GgmlType::kQ8_0);
  EXPECT_EQ(ChooseTensorType(QuantScheme::kQ8_0, {"blk.0.ffn_down.weight", {172, 64}, 5, true}), GgmlType::kF16);
  EXPECT_EQ(ChooseTensorType(QuantScheme::kQ4_0, {"blk.0.attn_q.weight", {64, 64}, 5, true}), GgmlType::kQ4_0);
}

TEST(QuantPlanTest, OutputProjectionPerScheme) {
  const TensorPlanInput out{"output.weight", {1024, 151936}, 28, true};
  EXPECT_EQ(ChooseTensorType(QuantScheme::kQ8_0, out), GgmlType::kQ8_0);
  EXPECT_EQ(ChooseTensorType(QuantScheme::kF16, out), GgmlType::kF16);
  EXPECT_EQ(ChooseTensorType(QuantScheme::kQ4_0, out), GgmlType::kQ6_K);
  EXPECT_EQ(ChooseTensorType(QuantScheme::kQ4_K, out), GgmlType::kQ6_K);
  EXPECT_EQ(ChooseTensorType(QuantScheme::kQ6_K, out), GgmlType::kQ6_K);
}

TEST(QuantPlanTest, NamesAndFileTypes) {
  EXPECT_EQ(ParseQuantScheme("Q4_K_M"), QuantScheme::kQ4_K_M);
  EXPECT_EQ(ParseQuantScheme("q8_0"), QuantScheme::kQ8_0);
  EXPECT_EQ(ParseQuantScheme("q4_k_s"), std::nullopt);
  EXPECT_EQ(ParseQuantScheme(""), std::nullopt);
  EXPECT_EQ(QuantSchemeFileType(QuantScheme::kQ4_K_M), 15u);
  EXPECT_EQ(QuantSchemeFileType(QuantScheme::kQ8_0), 7u);
  EXPECT_EQ(QuantSchemeFileType(QuantScheme::kQ4_0), 2u);
  EXPECT_EQ(LayerIndex("blk.17.ffn_down.weight"), 17);
  EXPECT_EQ(LayerIndex("blk.x.ffn_down.weight"), -1);
  EXPECT_EQ(LayerIndex("blk.3"), -1);
  EXPECT_EQ(LayerIndex("token_embd.weight"), -1);
}

}  // namespace
}  // namespace cllm::engine
