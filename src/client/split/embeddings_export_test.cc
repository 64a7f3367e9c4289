// Tests for the client's part of a model (embeddings_export.h): the file holds
// exactly token_embd.weight (byte-identical, original type), the tokenizer and
// the few keys named, and optionally the neighbour lists, which must agree with
// a brute-force cosine ranking; sealing and unsealing it changes nothing.
#include "client/split/embeddings_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "crypto/sealed_model.h"
#include "support/shared_data.h"

namespace cllm::split {
namespace {

namespace fs = std::filesystem;
using engine::GgufFile;

bool Allowed(const std::string& key, const std::string& arch) {
  return key == "general.architecture" || key == "general.name" || key == arch + ".embedding_length" ||
         key.rfind("tokenizer.", 0) == 0;
}

// ExpectOnlyTheClientPart checks `out` against its source `model`.
void ExpectOnlyTheClientPart(const GgufFile& model, const GgufFile& out, bool with_neighbours) {
  const std::string arch = model.GetString("general.architecture").value();
  std::set<std::string> names;
  for (const auto& t : out.tensors()) names.insert(t.name);
  std::set<std::string> want = {kTokenEmbdTensor};
  if (with_neighbours) want.insert(kNeighboursTensor);
  EXPECT_EQ(names, want);

  size_t tokenizer_keys = 0, source_tokenizer_keys = 0;
  for (const auto& [key, v] : out.metadata()) {
    if (key == "general.alignment") continue;  // the writer's own layout key, when it writes one
    EXPECT_TRUE(Allowed(key, arch)) << "unexpected key " << key;
    tokenizer_keys += key.rfind("tokenizer.", 0) == 0;
  }
  for (const auto& [key, v] : model.metadata()) source_tokenizer_keys += key.rfind("tokenizer.", 0) == 0;
  EXPECT_EQ(tokenizer_keys, source_tokenizer_keys);
  EXPECT_GT(tokenizer_keys, 0u);
  EXPECT_EQ(out.GetUint(arch + ".embedding_length").value(), model.GetUint(arch + ".embedding_length").value());
  // A tokenizer array survives value for value.
  auto a = model.GetArray("tokenizer.ggml.tokens");
  auto b = out.GetArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->strings, (*b)->strings);

  const auto* src = model.FindTensor(kTokenEmbdTensor);
  const auto* dst = out.FindTensor(kTokenEmbdTensor);
  ASSERT_TRUE(src && dst);
  EXPECT_EQ(dst->type, src->type);
  EXPECT_EQ(dst->ne, src->ne);
  ASSERT_EQ(dst->n_bytes, src->n_bytes);
  EXPECT_EQ(std::memcmp(dst->data, src->data, src->n_bytes), 0);
}

GgufFile Reparse(const engine::GgufWriter& w) {
  auto f = GgufFile::FromBytes(w.Finish());
  EXPECT_TRUE(f.ok()) << f.detail();
  return std::move(f).value();
}

class EmbeddingsExportTest : public ::testing::TestWithParam<const char*> {};

TEST_P(EmbeddingsExportTest, OnlyTokenEmbdAndTokenizerAreWritten) {
  CLLM_SHARED_PATH(path, std::string("models/") + GetParam());
  auto model = GgufFile::Open(path);
  ASSERT_TRUE(model.ok()) << model.detail();
  auto w = BuildEmbeddingsGguf(*model, {});
  ASSERT_TRUE(w.ok()) << w.detail();
  ExpectOnlyTheClientPart(*model, Reparse(*w), false);
}

INSTANTIATE_TEST_SUITE_P(Types, EmbeddingsExportTest,
                         ::testing::Values("stories260K-f32.gguf", "stories260K-q8_0.gguf", "qwen3-tiny-random-q4_k_m.gguf"));

TEST(EmbeddingsExport, SealedAndUnsealedItIsTheSameFile) {
  CLLM_SHARED_PATH(path, "models/stories260K-f32.gguf");
  auto model = GgufFile::Open(path);
  ASSERT_TRUE(model.ok()) << model.detail();
  const fs::path dir = fs::temp_directory_path() / ("cllm_emb_export_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EmbeddingsExportOptions o;
  o.neighbours = 4;
  ASSERT_TRUE(WriteEmbeddingsGguf(*model, dir / "emb.gguf", o).ok());
  const Bytes key(32, 0x5A);
  crypto::SealOptions so;
  so.key_id = "emb";
  so.model_name = "emb";
  auto h = crypto::SealFile(dir / "emb.gguf", dir / "emb.cllm", key, so);
  ASSERT_TRUE(h.ok()) << h.detail();
  auto plain = crypto::UnsealFile(dir / "emb.cllm", key, nullptr, &h->plaintext_digest);
  ASSERT_TRUE(plain.ok()) << plain.detail();
  auto out = GgufFile::FromBytes(plain->span());
  ASSERT_TRUE(out.ok()) << out.detail();
  ExpectOnlyTheClientPart(*model, *out, true);

  // The rows a client expands are the engine's rows of the full model.
  auto rows = DequantizedEmbeddings(*model);
  auto rows2 = DequantizedEmbeddings(*out);
  ASSERT_TRUE(rows.ok() && rows2.ok());
  EXPECT_EQ(rows->rows, rows2->rows);
  EXPECT_EQ(rows->n_vocab, 512u);
  fs::remove_all(dir);
}

// A small model with known rows: ids ranked by cosine in double precision.
TEST(EmbeddingsExport, NeighboursMatchABruteForceRanking) {
  constexpr uint32_t kVocab = 97, kDim = 8, kK = 6;
  std::mt19937 rng(16);
  std::normal_distribution<float> normal;
  std::vector<float> rows(kVocab * kDim);
  for (float& x : rows) x = normal(rng);
  rows[5 * kDim + 0] = 7;  // one duplicated direction: token 40 = 2 × token 5
  for (uint32_t d = 0; d < kDim; ++d) rows[40 * kDim + d] = 2 * rows[5 * kDim + d];

  engine::GgufWriter src;
  src.AddString("general.architecture", "llama");
  src.AddString("general.name", "tiny");
  src.AddU32("llama.embedding_length", kDim);
  src.AddU32("llama.block_count", 1);  // not copied
  src.AddString("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens;
  for (uint32_t t = 0; t < kVocab; ++t) tokens.push_back("t" + std::to_string(t));
  src.AddStringArray("tokenizer.ggml.tokens", tokens);
  src.AddTensor(kTokenEmbdTensor, engine::GgmlType::kF32, {kDim, kVocab},
                ByteSpan(reinterpret_cast<const uint8_t*>(rows.data()), rows.size() * 4));
  std::vector<float> other(kDim * 3, 1.0f);
  src.AddTensor("output_norm.weight", engine::GgmlType::kF32, {kDim * 3},
                ByteSpan(reinterpret_cast<const uint8_t*>(other.data()), other.size() * 4));
  GgufFile model = Reparse(src);

  EmbeddingsExportOptions o;
  o.neighbours = kK;
  uint64_t last_progress = 0;
  o.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, kVocab);
    EXPECT_GE(done, last_progress);
    last_progress = done;
  };
  auto w = BuildEmbeddingsGguf(model, o);
  ASSERT_TRUE(w.ok()) << w.detail();
  GgufFile out = Reparse(*w);
  ExpectOnlyTheClientPart(model, out, true);
  EXPECT_EQ(last_progress, kVocab);
  EXPECT_EQ(out.Find("llama.block_count"), nullptr);

  const auto* nb = out.FindTensor(kNeighboursTensor);
  ASSERT_NE(nb, nullptr);
  EXPECT_EQ(nb->type, engine::GgmlType::kI32);
  EXPECT_EQ(nb->ne, (std::vector<int64_t>{kK, kVocab}));
  std::vector<int32_t> got(kVocab * kK);
  ASSERT_EQ(nb->n_bytes, got.size() * 4);
  std::memcpy(got.data(), nb->data, nb->n_bytes);

  auto cosine = [&](uint32_t a, uint32_t b) {
    double dot = 0, na = 0, nb2 = 0;
    for (uint32_t d = 0; d < kDim; ++d) {
      dot += double{rows[a * kDim + d]} * rows[b * kDim + d];
      na += double{rows[a * kDim + d]} * rows[a * kDim + d];
      nb2 += double{rows[b * kDim + d]} * rows[b * kDim + d];
    }
    return dot / std::sqrt(na * nb2);
  };
  for (uint32_t t = 0; t < kVocab; ++t) {
    std::vector<uint32_t> ids;
    for (uint32_t u = 0; u < kVocab; ++u) {
      if (u != t) ids.push_back(u);
    }
    std::stable_sort(ids.begin(), ids.end(), [&](uint32_t a, uint32_t b) { return cosine(t, a) > cosine(t, b); });
    std::vector<int32_t> want = {static_cast<int32_t>(t)};
    for (uint32_t j = 0; j + 1 < kK; ++j) want.push_back(static_cast<int32_t>(ids[j]));
    std::vector<int32_t> row(got.begin() + t * kK, got.begin() + (t + 1) * kK);
    EXPECT_EQ(row, want) << "token " << t;
  }
  EXPECT_EQ(got[5 * kK + 1], 40);  // cosine 1 with its duplicate direction
  EXPECT_EQ(got[40 * kK + 1], 5);

  // Threads change nothing.
  auto table = EmbeddingTable::Create(kVocab, kDim, rows).value();
  EXPECT_EQ(ComputeNeighbours(table, kK, 1).value(), got);
  EXPECT_EQ(ComputeNeighbours(table, kK, 7).value(), got);
  EXPECT_FALSE(ComputeNeighbours(table, 0).ok());
  EXPECT_FALSE(ComputeNeighbours(table, kVocab + 1).ok());
}

TEST(EmbeddingsExport, RefusesModelsItCannotSplit) {
  engine::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddU32("llama.embedding_length", 4);
  w.AddString("tokenizer.ggml.model", "llama");
  std::vector<float> x(8, 1.0f);
  w.AddTensor("output.weight", engine::GgmlType::kF32, {4, 2},
              ByteSpan(reinterpret_cast<const uint8_t*>(x.data()), x.size() * 4));
  auto r = BuildEmbeddingsGguf(Reparse(w), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kNotFound);

  engine::GgufWriter wrong_dim;
  wrong_dim.AddString("general.architecture", "llama");
  wrong_dim.AddU32("llama.embedding_length", 8);
  wrong_dim.AddString("tokenizer.ggml.model", "llama");
  wrong_dim.AddTensor(kTokenEmbdTensor, engine::GgmlType::kF32, {4, 2},
                      ByteSpan(reinterpret_cast<const uint8_t*>(x.data()), x.size() * 4));
  EXPECT_EQ(BuildEmbeddingsGguf(Reparse(wrong_dim), {}).code(), Errc::kParse);

  engine::GgufWriter zero_row;  // neighbours need a direction for every row
  zero_row.AddString("general.architecture", "llama");
  zero_row.AddU32("llama.embedding_length", 4);
  zero_row.AddString("tokenizer.ggml.model", "llama");
  std::vector<float> z = {1, 2, 3, 4, 0, 0, 0, 0};
  zero_row.AddTensor(kTokenEmbdTensor, engine::GgmlType::kF32, {4, 2},
                     ByteSpan(reinterpret_cast<const uint8_t*>(z.data()), z.size() * 4));
  GgufFile zf = Reparse(zero_row);
  EXPECT_TRUE(BuildEmbeddingsGguf(zf, {}).ok());
  EmbeddingsExportOptions o;
  o.neighbours = 2;
  EXPECT_EQ(BuildEmbeddingsGguf(zf, o).code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace cllm::split
