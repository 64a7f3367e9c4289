// The split client's rows against the engine's: for every tensor type of the
// shared models, LoadEmbeddings (which never links the engine) gives token
// rows bit-identical to engine::Model::TokenEmbedding, and the same tokens for
// a text as the engine's tokenizer. This is the one split test that links
// cllm_engine; cllm_split itself must not (checked when CMake configures).
#include <gtest/gtest.h>

#include <cstring>

#include "client/split/embeddings_file.h"
#include "client/split/split_request.h"
#include "engine/model/model.h"
#include "support/shared_data.h"

namespace cllm::split {
namespace {

void ExpectRowsMatchEngine(const std::string& relative, uint32_t stride) {
  const std::filesystem::path path = testing::SharedDir() / relative;
  if (!std::filesystem::exists(path)) {
    if (testing::RunningInCi()) FAIL() << "shared test data missing under CI: " << path;
    GTEST_SKIP() << "SKIPPED — shared test data not found: " << path;
  }
  auto model = engine::Model::Open(path);
  ASSERT_TRUE(model.ok()) << model.detail();
  auto split = LoadEmbeddings(path);
  ASSERT_TRUE(split.ok()) << split.detail();
  const auto& c = (*model)->config();
  ASSERT_EQ(split->table.n_vocab(), static_cast<uint32_t>(c.n_vocab));
  ASSERT_EQ(split->table.dim(), static_cast<uint32_t>(c.n_embd));
  std::vector<float> row(static_cast<size_t>(c.n_embd));
  size_t compared = 0;
  for (uint32_t id = 0; id < split->table.n_vocab(); id += stride) {
    ASSERT_TRUE((*model)->TokenEmbedding(static_cast<engine::TokenId>(id), row).ok());
    const std::span<const float> ours = split->table.Row(id);
    ASSERT_EQ(std::memcmp(ours.data(), row.data(), row.size() * sizeof(float)), 0)
        << relative << " token " << id;
    ++compared;
  }
  EXPECT_GT(compared, 100u);
  // The same tokenizer code reads the same keys: the same ids for a text.
  for (const char* text : {"Once upon a time, Lily saw 3 cats.", "<|im_end|> 12,345 naïve"}) {
    EXPECT_EQ(split->tokenizer->Encode(text, false, false),
              (*model)->tokenizer().Encode(text, false, false));
    EXPECT_EQ(split->tokenizer->Encode(text, true, false),
              (*model)->tokenizer().Encode(text, true, false));
  }
}

TEST(SplitEngineTest, StoriesRowsMatchTokenEmbeddingForEveryType) {
  for (const char* type : {"f32", "f16", "q8_0", "q4_0", "q4_k_m", "q6_k"}) {
    SCOPED_TRACE(type);
    ExpectRowsMatchEngine(std::string("models/stories260K-") + type + ".gguf", 1);
  }
}

TEST(SplitEngineTest, BpeModelRowsMatchTokenEmbedding) {
  // Qwen3's vocabulary (151,936 rows): every 97th row, and its BPE tokenizer.
  ExpectRowsMatchEngine("models/qwen3-tiny-random-q4_k_m.gguf", 97);
}

// ε = ∞ through the builder gives exactly what the engine's id path embeds.
TEST(SplitEngineTest, InfiniteEpsilonRowsAreTheEnginesRows) {
  CLLM_SHARED_PATH(path, "models/stories260K-q4_k_m.gguf");
  auto model = engine::Model::Open(path);
  ASSERT_TRUE(model.ok()) << model.detail();
  auto split = LoadEmbeddings(path);
  ASSERT_TRUE(split.ok()) << split.detail();
  const char* text = "The little dog ran to the big tree.";
  std::array<uint8_t, 32> seed{};
  SeededRandom random(seed);
  auto e = EmbedText(*split, text, true, RnmOptions{kNoNoise, 20}, MaskPolicy{}, random);
  ASSERT_TRUE(e.ok()) << e.detail();
  const std::vector<engine::TokenId> ids = (*model)->tokenizer().Encode(text, true, false);
  ASSERT_EQ(e->n_rows, ids.size());
  const size_t d = static_cast<size_t>((*model)->config().n_embd);
  std::vector<float> row(d);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE((*model)->TokenEmbedding(ids[i], row).ok());
    EXPECT_EQ(std::memcmp(e->rows.data() + i * d, row.data(), d * sizeof(float)), 0) << i;
  }
}

}  // namespace
}  // namespace cllm::split
