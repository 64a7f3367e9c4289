// Architecture features beyond the plain llama block: RoPE frequency
// factors (Llama 3.1's rope_freqs, Phi-3's LongRoPE), fused matrices, and
// the refusal of keys and tensors the graph would otherwise ignore.
// Agreement with llama.cpp is in model_reference_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/ops.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

TEST(RopeScalingTest, FactorsDivideFrequenciesAndMscaleScalesCosSin) {
  const int n_rot = 8;
  std::vector<float> plain(n_rot), scaled(n_rot), halved(n_rot);
  ops::RopeCosSin(n_rot, 7, 10000.0f, plain.data());
  const std::vector<float> factors = {1.0f, 2.0f, 4.0f, 8.0f};
  ops::RopeScaling s;
  s.freq_factors = factors.data();
  s.mscale = 1.5f;
  ops::RopeCosSin(n_rot, 7, 10000.0f, s, scaled.data());
  EXPECT_FLOAT_EQ(scaled[0], plain[0] * 1.5f);  // factor 1: only mscale
  EXPECT_FLOAT_EQ(scaled[1], plain[1] * 1.5f);
  for (int i = 1; i < n_rot / 2; ++i) {
    const double theta = 7 * std::pow(10000.0, -2.0 * i / n_rot) / factors[i];
    EXPECT_NEAR(scaled[2 * i], std::cos(theta) * 1.5, 1e-6) << i;
    EXPECT_NEAR(scaled[2 * i + 1], std::sin(theta) * 1.5, 1e-6) << i;
  }
  // Linear scaling by 1/2 equals all factors 2; no scaling is the plain path.
  const std::vector<float> twos(n_rot / 2, 2.0f);
  ops::RopeScaling lin, div;
  lin.freq_scale = 0.5f;
  div.freq_factors = twos.data();
  ops::RopeCosSin(n_rot, 7, 10000.0f, lin, halved.data());
  ops::RopeCosSin(n_rot, 7, 10000.0f, div, scaled.data());
  for (int i = 0; i < n_rot; ++i) EXPECT_NEAR(halved[i], scaled[i], 1e-6) << i;
  ops::RopeCosSin(n_rot, 7, 10000.0f, ops::RopeScaling{}, scaled.data());
  EXPECT_EQ(scaled, plain);
}

// A tiny llama file (n_embd 8, one layer), every tensor F32 zeros.
GgufWriter TinyLlama() {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddU32("llama.embedding_length", 8);
  w.AddU32("llama.block_count", 1);
  w.AddU32("llama.feed_forward_length", 16);
  w.AddU32("llama.attention.head_count", 2);
  w.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
  w.AddString("tokenizer.ggml.model", "llama");
  auto add = [&](const std::string& name, std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    w.AddTensor(name, GgmlType::kF32, ne, Bytes(static_cast<size_t>(n) * 4, 0));
  };
  add("token_embd.weight", {8, 2});
  add("output_norm.weight", {8});
  for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output"}) add(std::string("blk.0.") + m + ".weight", {8, 8});
  add("blk.0.attn_norm.weight", {8});
  add("blk.0.ffn_norm.weight", {8});
  add("blk.0.ffn_gate.weight", {8, 16});
  add("blk.0.ffn_up.weight", {8, 16});
  add("blk.0.ffn_down.weight", {16, 8});
  return w;
}

ModelResult<ModelWeights> Bind(GgufWriter& w) {
  auto f = GgufFile::FromBytes(w.Finish());
  EXPECT_TRUE(f.ok());
  auto c = ConfigFromGguf(*f);
  if (!c.ok()) return std::move(c).error();
  return BindWeights(*f, *c);
}

TEST(ModelArchTest, EveryTensorMustBeUsed) {
  GgufWriter ok = TinyLlama();
  EXPECT_TRUE(Bind(ok).ok());
  GgufWriter extra = TinyLlama();
  extra.AddTensor("blk.0.attn_q.bias", GgmlType::kF32, {8}, Bytes(32, 0));  // llama has no biases
  auto r = Bind(extra);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ModelErrc::kBadTensor);
  EXPECT_NE(r.detail().find("blk.0.attn_q.bias"), std::string::npos) << r.detail();
  GgufWriter layer = TinyLlama();  // a layer beyond block_count
  layer.AddTensor("blk.1.attn_norm.weight", GgmlType::kF32, {8}, Bytes(32, 0));
  EXPECT_EQ(Bind(layer).code(), ModelErrc::kBadTensor);
}

TEST(ModelArchTest, RopeScalingKeysAreAppliedOrRefused) {
  GgufWriter yarn = TinyLlama();
  yarn.AddString("llama.rope.scaling.type", "yarn");
  auto r = Bind(yarn);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ModelErrc::kBadHparams);
  EXPECT_NE(r.detail().find("yarn"), std::string::npos) << r.detail();
  GgufWriter unknown = TinyLlama();
  unknown.AddString("llama.rope.scaling.type", "something-new");
  EXPECT_EQ(Bind(unknown).code(), ModelErrc::kBadHparams);
  GgufWriter attn = TinyLlama();  // LongRoPE's attn_factor belongs to phi3
  attn.AddF32("llama.rope.scaling.attn_factor", 1.2f);
  EXPECT_EQ(Bind(attn).code(), ModelErrc::kBadHparams);
  GgufWriter softcap = TinyLlama();
  softcap.AddF32("llama.final_logit_softcapping", 30.0f);
  EXPECT_EQ(Bind(softcap).code(), ModelErrc::kBadHparams);
  GgufWriter experts = TinyLlama();
  experts.AddU32("llama.expert_count", 8);
  EXPECT_EQ(Bind(experts).code(), ModelErrc::kBadHparams);
  GgufWriter neutral = TinyLlama();  // the neutral value of such a key changes nothing
  neutral.AddU32("llama.expert_count", 0);
  neutral.AddF32("llama.logit_scale", 1.0f);
  EXPECT_TRUE(Bind(neutral).ok());

  GgufWriter linear = TinyLlama();
  linear.AddString("llama.rope.scaling.type", "linear");
  linear.AddF32("llama.rope.scaling.factor", 4.0f);
  auto f = GgufFile::FromBytes(linear.Finish()).value();
  auto c = ConfigFromGguf(f);
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_FLOAT_EQ(c->rope_freq_scale, 0.25f);
}

TEST(ModelArchTest, Llama3LoadsItsRopeFrequencyFactors) {
  CLLM_SHARED_PATH(path, "models/llama3-tiny-random-q8_0.gguf");
  auto f = GgufFile::Open(path).value();
  auto c = ConfigFromGguf(f);
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_FALSE(c->tied_output);
  EXPECT_FLOAT_EQ(c->rope_base, 500000.0f);
  auto w = BindWeights(f, *c);
  ASSERT_TRUE(w.ok()) << w.detail();
  ASSERT_EQ(w->rope_factors.size(), 32u);
  EXPECT_TRUE(w->rope_factors_long.empty());
  // Llama 3.1's scaling: high frequencies kept (1), low ones divided by 8.
  EXPECT_FLOAT_EQ(w->rope_factors.front(), 1.0f);
  EXPECT_FLOAT_EQ(w->rope_factors.back(), 8.0f);
  EXPECT_EQ(w->RopeFactorsFor(1 << 20, c->n_ctx_orig), w->rope_factors.data());  // any context
  EXPECT_EQ(w->RopeFactorsFor(16, c->n_ctx_orig), w->rope_factors.data());
}

// Phi-3 LongRoPE: a context longer than the original 4096 positions uses the
// long factors (as llama.cpp chooses by n_ctx), so the same prompt gives
// other logits; the fused matrices are split by rows of one tensor.
TEST(ModelArchTest, Phi3PicksLongRopeFactorsByContextLength) {
  CLLM_SHARED_PATH(path, "models/phi3-tiny-random-q8_0.gguf");
  auto m = Model::Open(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.n_ctx_orig, 4096);
  EXPECT_TRUE(c.fused_qkv && c.fused_gate_up);
  EXPECT_NEAR(c.rope_attn_factor, 1.1902f, 1e-4);
  auto logits = [&](int n_ctx) {
    KvCache cache(c, KvType::kF16, n_ctx);
    std::vector<float> out;
    EXPECT_TRUE((*m)->Forward({{0, 0, 1, false}, {0, 1, 9038, false}, {0, 2, 2501, true}}, cache, &out).ok());
    return out;
  };
  auto short_ctx = logits(64), at_orig = logits(4096), long_ctx = logits(8192);
  EXPECT_EQ(short_ctx, at_orig);
  double diff = 0;
  for (size_t i = 0; i < short_ctx.size(); ++i) diff = std::max(diff, std::fabs(double{short_ctx[i]} - long_ctx[i]));
  EXPECT_GT(diff, 1e-3);
}

}  // namespace
}  // namespace cllm::engine
