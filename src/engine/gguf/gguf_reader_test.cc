// The reader on every real model in ../shared/models, and writer round trips.
#include <gtest/gtest.h>

#include <map>

#include "engine/gguf/gguf.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/kernels.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

std::map<std::string, int> TypeCounts(const GgufFile& f) {
  std::map<std::string, int> out;
  for (const auto& t : f.tensors()) out[GetTypeTraits(t.type)->name]++;
  return out;
}

TEST(GgufReaderTest, Stories260KF32) {
  CLLM_SHARED_PATH(path, "models/stories260K-f32.gguf");
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.detail();
  EXPECT_EQ(*f->GetString("general.architecture"), "llama");
  EXPECT_EQ(*f->GetUint("llama.embedding_length"), 64u);
  EXPECT_EQ(*f->GetUint("llama.block_count"), 5u);
  EXPECT_EQ(*f->GetUint("llama.attention.head_count"), 8u);
  EXPECT_EQ(*f->GetUint("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(*f->GetUint("llama.context_length"), 128u);  // what the llama2c converter wrote
  EXPECT_EQ((*f->GetArray("tokenizer.ggml.tokens"))->strings.size(), 512u);
  EXPECT_EQ(*f->GetString("tokenizer.ggml.model"), "llama");
  EXPECT_FALSE(f->Find("general.file_type"));  // llama2c converter omits it
  const GgufTensorInfo* emb = f->FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->ne, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(emb->type, GgmlType::kF32);
  EXPECT_EQ(emb->n_bytes, 64u * 512 * 4);
  EXPECT_NE(f->FindTensor("output.weight"), nullptr);  // untied
  EXPECT_EQ(TypeCounts(*f), (std::map<std::string, int>{{"f32", static_cast<int>(f->tensors().size())}}));
}

TEST(GgufReaderTest, QuantizedStoriesHoldTheDocumentedTypes) {
  CLLM_SHARED_PATH(q8, "models/stories260K-q8_0.gguf");
  CLLM_SHARED_PATH(q4km, "models/stories260K-q4_k_m.gguf");
  auto f8 = GgufFile::Open(q8);
  ASSERT_TRUE(f8.ok()) << f8.detail();
  EXPECT_EQ(f8->FindTensor("blk.0.ffn_down.weight")->type, GgmlType::kF16);  // 172 not a multiple of 32
  EXPECT_EQ(f8->FindTensor("blk.0.attn_q.weight")->type, GgmlType::kQ8_0);
  auto fk = GgufFile::Open(q4km);
  ASSERT_TRUE(fk.ok()) << fk.detail();
  auto counts = TypeCounts(*fk);
  EXPECT_GT(counts["q5_0"], 0);  // the K-quant fallback documented in models/README.md
  EXPECT_EQ(counts["q4_K"], 0);
}

TEST(GgufReaderTest, Qwen3TinyKQuantMix) {
  CLLM_SHARED_PATH(path, "models/qwen3-tiny-random-q4_k_m.gguf");
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.detail();
  EXPECT_EQ(*f->GetString("general.architecture"), "qwen3");
  EXPECT_EQ(*f->GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(*f->GetString("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ((*f->GetArray("tokenizer.ggml.tokens"))->strings.size(), 151936u);
  EXPECT_EQ(f->FindTensor("token_embd.weight")->type, GgmlType::kQ6_K);
  EXPECT_EQ(f->FindTensor("blk.0.attn_q.weight")->type, GgmlType::kQ4_K);
  EXPECT_EQ(f->FindTensor("output.weight"), nullptr);  // tied embeddings
  EXPECT_NE(f->FindTensor("blk.0.attn_q_norm.weight"), nullptr);
}

TEST(GgufReaderTest, EverySharedModelParses) {
  CLLM_SHARED_PATH(dir, "models");
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".gguf") continue;
    auto f = GgufFile::Open(entry.path());
    EXPECT_TRUE(f.ok()) << entry.path() << ": " << (f.ok() ? "" : f.detail());
    ++n;
  }
  EXPECT_GE(n, 15);
}

TEST(GgufReaderTest, VocabOnlyFileHasNoTensors) {
  CLLM_SHARED_PATH(path, "models/ggml-vocab-qwen3.gguf");
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.detail();
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(*f->GetString("tokenizer.ggml.pre"), "qwen2");
}

TEST(GgufReaderTest, TypedGettersReportMissingAndWrongType) {
  GgufWriter w;
  w.AddString("s", "x");
  w.AddU32("u", 7);
  w.AddI32("neg", -3);
  w.AddBool("b", true);
  w.AddF32("f", 0.5f);
  auto f = GgufFile::FromBytes(w.Finish());
  ASSERT_TRUE(f.ok()) << f.detail();
  EXPECT_EQ(*f->GetUint("u"), 7u);
  EXPECT_EQ(*f->GetInt("u"), 7);
  EXPECT_EQ(*f->GetInt("neg"), -3);
  EXPECT_EQ(f->GetUint("neg").code(), GgufErrc::kWrongType);
  EXPECT_EQ(f->GetUint("missing").code(), GgufErrc::kMissingKey);
  EXPECT_EQ(f->GetString("u").code(), GgufErrc::kWrongType);
  EXPECT_EQ(f->GetUint("b").code(), GgufErrc::kWrongType);
  EXPECT_TRUE(*f->GetBool("b"));
  EXPECT_DOUBLE_EQ(*f->GetFloat("f"), 0.5);
  EXPECT_EQ(f->GetArray("s").code(), GgufErrc::kWrongType);
}

TEST(GgufReaderTest, WriterRoundTripPreservesEverything) {
  GgufWriter w(64);
  w.AddString("general.architecture", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", {"a", "b", "\xe2\x96\x81"});
  w.AddF32Array("scores", {1.0f, -2.5f});
  w.AddI32Array("types", {1, 3});
  w.AddU64("big", uint64_t{1} << 40);
  std::vector<float> data(16);
  for (int i = 0; i < 16; ++i) data[i] = static_cast<float>(i);
  w.AddTensor("t0", GgmlType::kF32, {8, 2}, ByteSpan(reinterpret_cast<uint8_t*>(data.data()), 64));
  w.AddTensor("t1", GgmlType::kF32, {4}, ByteSpan(reinterpret_cast<uint8_t*>(data.data()), 16));
  auto f = GgufFile::FromBytes(w.Finish());
  ASSERT_TRUE(f.ok()) << f.detail();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ((*f->GetArray("tokenizer.ggml.tokens"))->strings[2], "\xe2\x96\x81");
  EXPECT_EQ((*f->GetArray("scores"))->floats[1], -2.5);
  EXPECT_EQ((*f->GetArray("types"))->ints[1], 3);
  EXPECT_EQ(*f->GetUint("big"), uint64_t{1} << 40);
  const auto* t1 = f->FindTensor("t1");
  ASSERT_NE(t1, nullptr);
  EXPECT_EQ(t1->offset % 64, 0u);
  EXPECT_EQ(reinterpret_cast<const float*>(t1->data)[3], 3.0f);
  EXPECT_EQ(f->FindTensor("t0")->n_elements(), 16);
}

}  // namespace
}  // namespace cllm::engine
