// `cllm model synth`: the tiny preset loads in our engine, generates, and
// is reproducible byte for byte from its seed.
#include "engine/quant/synth_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/kernels.h"
#include "engine/model/generator.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

class SynthModelTest : public ::testing::Test {
 protected:
  std::filesystem::path Temp(const std::string& name) {
    auto p = std::filesystem::temp_directory_path() / ("cllm_synth_" + std::to_string(::getpid()) + "_" + name);
    paths_.push_back(p);
    return p;
  }
  void TearDown() override {
    for (const auto& p : paths_) std::filesystem::remove(p);
  }
  std::vector<std::filesystem::path> paths_;
};

TEST_F(SynthModelTest, Qwen3PresetsHaveTheReleasedShapes) {
  const SynthPreset p06 = FindSynthPreset("qwen3-0.6b").value();
  EXPECT_EQ(p06.n_layer, 28);
  EXPECT_EQ(p06.n_embd, 1024);
  EXPECT_EQ(p06.n_ff, 3072);
  EXPECT_EQ(p06.n_head, 16);
  EXPECT_EQ(p06.n_head_kv, 8);
  EXPECT_EQ(p06.head_dim, 128);
  EXPECT_EQ(p06.n_ctx, 40960);
  const SynthPreset p17 = FindSynthPreset("qwen3-1.7b").value();
  EXPECT_EQ(p17.n_embd, 2048);
  EXPECT_EQ(p17.n_ff, 6144);
  EXPECT_FALSE(FindSynthPreset("qwen3-8b").has_value());
}

TEST_F(SynthModelTest, TinyLoadsGeneratesAndIsReproducible) {
  CLLM_SHARED_PATH(vocab_path, "models/ggml-vocab-qwen3.gguf");
  auto vocab = GgufFile::Open(vocab_path).value();
  SynthOptions opts{FindSynthPreset("tiny").value(), QuantScheme::kQ8_0, 7};
  const auto a = Temp("a.gguf"), b = Temp("b.gguf"), c = Temp("c.gguf");
  ASSERT_TRUE(SynthesizeModel(opts, vocab, a).ok());
  ASSERT_TRUE(SynthesizeModel(opts, vocab, b).ok());
  opts.seed = 8;
  ASSERT_TRUE(SynthesizeModel(opts, vocab, c).ok());
  const Bytes bytes_a = ReadFile(a).value();
  EXPECT_TRUE(bytes_a == ReadFile(b).value()) << "same seed must give the same file";
  EXPECT_FALSE(bytes_a == ReadFile(c).value()) << "another seed must give other weights";

  auto model = Model::Open(a);
  ASSERT_TRUE(model.ok()) << model.detail();
  const ModelConfig& cfg = (*model)->config();
  EXPECT_EQ(cfg.arch, "qwen3");
  EXPECT_EQ(cfg.n_layer, 2);
  EXPECT_EQ(cfg.n_embd, 256);
  EXPECT_EQ(cfg.head_dim, 64);
  EXPECT_EQ(cfg.n_vocab, 151936);
  EXPECT_TRUE(cfg.tied_output);
  EXPECT_TRUE(cfg.qk_norm);
  EXPECT_FLOAT_EQ(cfg.rope_base, 1e6f);
  GenerateOptions g;
  g.max_tokens = 4;
  g.stop_at_eog = false;
  auto r1 = Generate(**model, "Hello, my dog is cute", g);
  auto r2 = Generate(**model, "Hello, my dog is cute", g);
  ASSERT_TRUE(r1.ok()) << r1.detail();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r1->prompt_tokens, (std::vector<TokenId>{9707, 11, 847, 5562, 374, 18838}));  // real Qwen3 tokenizer
  EXPECT_EQ(r1->tokens.size(), 4u);
  EXPECT_EQ(r1->tokens, r2->tokens);
}

TEST_F(SynthModelTest, Q4_K_MUsesKQuantsAndLlamaTypes) {
  CLLM_SHARED_PATH(vocab_path, "models/ggml-vocab-qwen3.gguf");
  auto vocab = GgufFile::Open(vocab_path).value();
  const auto path = Temp("k.gguf");
  ASSERT_TRUE(SynthesizeModel({FindSynthPreset("tiny").value(), QuantScheme::kQ4_K_M, 1}, vocab, path).ok());
  auto f = GgufFile::Open(path).value();
  EXPECT_EQ(f.FindTensor("token_embd.weight")->type, GgmlType::kQ6_K);
  EXPECT_EQ(f.FindTensor("blk.0.attn_q.weight")->type, GgmlType::kQ4_K);
  EXPECT_EQ(f.FindTensor("blk.1.attn_v.weight")->type, GgmlType::kQ6_K);  // last eighth of 2 layers
  EXPECT_EQ(f.FindTensor("blk.0.attn_norm.weight")->type, GgmlType::kF32);
  EXPECT_EQ(f.GetUint("general.file_type").value(), 15u);
  EXPECT_EQ(f.GetString("tokenizer.ggml.pre").value(), "qwen2");
  auto model = Model::Open(path);
  ASSERT_TRUE(model.ok()) << model.detail();
}

TEST_F(SynthModelTest, RejectsVocabWithoutTokens) {
  GgufWriter empty;
  empty.AddString("general.architecture", "llama");
  auto vocab = GgufFile::FromBytes(empty.Finish()).value();
  auto r = SynthesizeModel({FindSynthPreset("tiny").value(), QuantScheme::kQ8_0, 1}, vocab, Temp("x.gguf"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), QuantErrc::kBadInput);
  EXPECT_FALSE(std::filesystem::exists(Temp("x.gguf")));
}

}  // namespace
}  // namespace cllm::engine
