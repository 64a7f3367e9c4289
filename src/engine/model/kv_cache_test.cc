// KvCache's addressing: whatever the block layout, every reader (Load,
// LoadRange across heads, LoadPositions, Rows) sees exactly what Store put
// at that layer, K/V, position and element, in F32 and F16.
#include "engine/model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "engine/kernels/kernels.h"

namespace cllm::engine {
namespace {

constexpr int kHeads = 3, kHeadDim = 4, kKvDim = kHeads * kHeadDim;
constexpr int kPositions = 2 * KvCache::kBlockSize + 7;  // three blocks, one partial

ModelConfig SmallConfig() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head_kv = kHeads;
  c.head_dim = kHeadDim;
  return c;
}

// A value exact in F16 (an integer below 2048) that names its layer, K/V
// (the sign), position and element: no two stored elements are equal.
float Value(int layer, int kv, int pos, int i) {
  return static_cast<float>((kv == 0 ? 1 : -1) * ((layer * kPositions + pos) * kKvDim + i + 1));
}

float RowElement(const KvRows& rows, int64_t pos, int64_t i) {
  const void* block = rows.blocks[pos / rows.block_size];
  const int64_t at = (pos % rows.block_size) * rows.stride + i;
  if (!rows.f16) return static_cast<const float*>(block)[at];
  float f;
  F16ToF32Row(static_cast<const uint16_t*>(block) + at, &f, 1);
  return f;
}

class KvCacheLayoutTest : public ::testing::TestWithParam<KvType> {};

TEST_P(KvCacheLayoutTest, EveryReaderSeesWhatStoreWrote) {
  const ModelConfig c = SmallConfig();
  const int kv_dim = c.n_head_kv * c.head_dim, n_pos = kPositions;
  KvCache cache(c, GetParam(), 4 * KvCache::kBlockSize);
  ASSERT_TRUE(cache.Prepare(/*seq=*/5, n_pos).ok());
  std::vector<float> row(static_cast<size_t>(kv_dim));
  for (int l = 0; l < c.n_layer; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      for (int p = 0; p < n_pos; ++p) {
        for (int i = 0; i < kv_dim; ++i) row[i] = Value(l, kv, p, i);
        cache.Store(l, kv, 5, p, row.data());
      }
    }
  }
  cache.SetLength(5, n_pos);
  std::vector<const void*> blocks;
  for (int l = 0; l < c.n_layer; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      for (int p = 0; p < n_pos; ++p) {
        cache.Load(l, kv, 5, p, row.data());
        for (int i = 0; i < kv_dim; ++i) ASSERT_EQ(row[i], Value(l, kv, p, i)) << l << " " << kv << " " << p << " " << i;
        // a range across the boundaries of heads 0|1 and 1|2
        std::vector<float> part(static_cast<size_t>(kv_dim - 5));
        cache.LoadRange(l, kv, 5, p, 3, kv_dim - 5, part.data());
        for (int i = 0; i < kv_dim - 5; ++i) ASSERT_EQ(part[i], Value(l, kv, p, 3 + i));
      }
      for (int h = 0; h < c.n_head_kv; ++h) {
        std::vector<float> head(static_cast<size_t>(n_pos) * c.head_dim);
        cache.LoadPositions(l, kv, 5, n_pos, h * c.head_dim, c.head_dim, head.data());
        const KvRows rows = cache.Rows(l, kv, 5, n_pos, h * c.head_dim, &blocks);
        for (int p = 0; p < n_pos; ++p) {
          for (int i = 0; i < c.head_dim; ++i) {
            const float want = Value(l, kv, p, h * c.head_dim + i);
            ASSERT_EQ(head[static_cast<size_t>(p) * c.head_dim + i], want);
            ASSERT_EQ(RowElement(rows, p, i), want) << "Rows: layer " << l << " head " << h << " pos " << p;
          }
        }
      }
      // positions spanning two heads' elements in one call
      std::vector<float> span(static_cast<size_t>(n_pos) * 6);
      cache.LoadPositions(l, kv, 5, n_pos, 2, 6, span.data());
      for (int p = 0; p < n_pos; ++p) {
        for (int i = 0; i < 6; ++i) ASSERT_EQ(span[static_cast<size_t>(p) * 6 + i], Value(l, kv, p, 2 + i));
      }
    }
  }
}

TEST_P(KvCacheLayoutTest, SequencesDoNotOverlap) {
  const ModelConfig c = SmallConfig();
  const int kv_dim = c.n_head_kv * c.head_dim;
  KvCache cache(c, GetParam(), 2 * KvCache::kBlockSize);
  ASSERT_TRUE(cache.Prepare(1, 40).ok());
  ASSERT_TRUE(cache.Prepare(2, 40).ok());
  std::vector<float> a(static_cast<size_t>(kv_dim), 1.0f), b(a.size(), 2.0f), got(a.size());
  for (int p = 0; p < 40; ++p) {
    cache.Store(1, 1, 1, p, a.data());
    cache.Store(1, 1, 2, p, b.data());
  }
  for (int p = 0; p < 40; ++p) {
    cache.Load(1, 1, 1, p, got.data());
    ASSERT_EQ(got, a);
    cache.Load(1, 1, 2, p, got.data());
    ASSERT_EQ(got, b);
    cache.Load(1, 0, 1, p, got.data());  // the K of that layer was never written
    ASSERT_EQ(got, std::vector<float>(a.size(), 0.0f));
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KvCacheLayoutTest, ::testing::Values(KvType::kF32, KvType::kF16),
                         [](const auto& p) { return p.param == KvType::kF32 ? "F32" : "F16"; });

}  // namespace
}  // namespace cllm::engine
