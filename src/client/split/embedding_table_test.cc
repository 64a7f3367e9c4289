// Tests of the client's embedding table: shape and value checks, and cosine
// nearest neighbours against a brute-force double-precision reference.
#include "client/split/embedding_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "client/split/random_source.h"

namespace cllm::split {
namespace {

// RandomRows returns n_vocab × dim values uniform in [−1, 1) from a fixed seed.
std::vector<float> RandomRows(uint32_t n_vocab, uint32_t dim, uint8_t seed_byte) {
  std::array<uint8_t, 32> seed{};
  seed[0] = seed_byte;
  SeededRandom random(seed);
  std::vector<float> rows(static_cast<size_t>(n_vocab) * dim);
  for (float& x : rows) {
    uint8_t b[4];
    random.Fill(b);
    const uint32_t v = (uint32_t{b[0]} << 16) | (uint32_t{b[1]} << 8) | b[2];
    x = static_cast<float>(v) / static_cast<float>(1u << 23) - 1.0f;
  }
  return rows;
}

double CosineRef(std::span<const float> a, std::span<const float> b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

TEST(EmbeddingTableTest, RejectsWrongShape) {
  EXPECT_EQ(EmbeddingTable::Create(3, 4, std::vector<float>(11, 1.0f)).code(), SplitErrc::kShape);
  EXPECT_EQ(EmbeddingTable::Create(3, 4, std::vector<float>(13, 1.0f)).code(), SplitErrc::kShape);
  EXPECT_EQ(EmbeddingTable::Create(0, 4, {}).code(), SplitErrc::kShape);
  EXPECT_EQ(EmbeddingTable::Create(3, 0, {}).code(), SplitErrc::kShape);
  // 2^32−1 × 2^32−1 does not overflow uint64 but can never match a real buffer.
  EXPECT_EQ(EmbeddingTable::Create(0xFFFFFFFFu, 0xFFFFFFFFu, std::vector<float>(4, 1.0f)).code(),
            SplitErrc::kShape);
}

TEST(EmbeddingTableTest, RejectsNonFiniteValues) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> rows(12, 0.5f);
    rows[7] = bad;
    auto table = EmbeddingTable::Create(3, 4, rows);
    ASSERT_FALSE(table.ok());
    EXPECT_EQ(table.code(), SplitErrc::kNonFinite);
    EXPECT_NE(table.detail().find("row 1"), std::string::npos) << table.detail();
  }
}

TEST(EmbeddingTableTest, RejectsZeroRow) {
  std::vector<float> rows(12, 0.5f);
  std::fill(rows.begin() + 8, rows.end(), 0.0f);
  EXPECT_EQ(EmbeddingTable::Create(3, 4, rows).code(), SplitErrc::kZeroVector);
  // A row so small that 1/‖row‖ is not a float has no usable direction either.
  std::fill(rows.begin() + 8, rows.end(), 1e-44f);
  EXPECT_EQ(EmbeddingTable::Create(3, 4, rows).code(), SplitErrc::kZeroVector);
}

TEST(EmbeddingTableTest, LargeFiniteRowsStayFinite) {
  std::vector<float> rows = {3e37f, 3e37f, 3e37f, -3e37f, 1.0f, 0.0f};
  auto table = EmbeddingTable::Create(3, 2, rows);
  ASSERT_TRUE(table.ok()) << table.detail();
  EXPECT_NEAR(table->Cosine(0, 1), 0.0f, 1e-6);
  EXPECT_NEAR(table->Cosine(0, 2), std::sqrt(0.5f), 1e-6);
  auto near = table->Nearest(0, 3);
  ASSERT_TRUE(near.ok());
  for (const Neighbour& n : *near) EXPECT_TRUE(std::isfinite(n.cosine));
}

TEST(EmbeddingTableTest, RowIsTheGivenRow) {
  std::vector<float> rows = RandomRows(5, 3, 1);
  auto table = EmbeddingTable::Create(5, 3, rows);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->n_vocab(), 5u);
  EXPECT_EQ(table->dim(), 3u);
  auto row = table->Row(4);
  EXPECT_TRUE(std::equal(row.begin(), row.end(), rows.begin() + 12));
}

TEST(EmbeddingTableTest, GatherConcatenatesRows) {
  std::vector<float> rows = RandomRows(5, 3, 6);
  auto table = EmbeddingTable::Create(5, 3, rows);
  ASSERT_TRUE(table.ok());
  const std::vector<uint32_t> ids = {4, 0, 4};
  auto out = table->Gather(ids);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 9u);
  EXPECT_TRUE(std::equal(out->begin(), out->begin() + 3, rows.begin() + 12));
  EXPECT_TRUE(std::equal(out->begin() + 3, out->begin() + 6, rows.begin()));
  EXPECT_TRUE(std::equal(out->begin() + 6, out->end(), rows.begin() + 12));
  EXPECT_TRUE(table->Gather({})->empty());
  const std::vector<uint32_t> bad = {1, 5};
  EXPECT_EQ(table->Gather(bad).code(), SplitErrc::kOutOfRange);
}

TEST(EmbeddingTableTest, NearestRejectsBadArguments) {
  auto table = EmbeddingTable::Create(4, 2, RandomRows(4, 2, 2));
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->Nearest(4u, 1).code(), SplitErrc::kOutOfRange);
  EXPECT_EQ(table->Nearest(0u, 0).code(), SplitErrc::kInvalidArgument);
  EXPECT_EQ(table->Nearest(0u, 5).code(), SplitErrc::kInvalidArgument);
  const std::vector<float> three = {1, 2, 3};
  EXPECT_EQ(table->Nearest(std::span<const float>(three), 1).code(), SplitErrc::kShape);
  const std::vector<float> nan = {1, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(table->Nearest(std::span<const float>(nan), 1).code(), SplitErrc::kNonFinite);
  const std::vector<float> zero = {0, 0};
  EXPECT_EQ(table->Nearest(std::span<const float>(zero), 1).code(), SplitErrc::kZeroVector);
  const std::vector<float> ok = {1, 0};
  EXPECT_EQ(table->Nearest(std::span<const float>(ok), 0).code(), SplitErrc::kInvalidArgument);
}

TEST(EmbeddingTableTest, TokenIsItsOwnNearestEvenWithDuplicateRows) {
  // Rows 0, 1 and 2 are identical: each must still head its own list, and the
  // tie between the other two goes to the smaller id.
  std::vector<float> rows = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
  auto table = EmbeddingTable::Create(5, 2, rows);
  ASSERT_TRUE(table.ok());
  for (uint32_t id : {0u, 1u, 2u}) {
    auto near = table->Nearest(id, 3);
    ASSERT_TRUE(near.ok());
    ASSERT_EQ(near->size(), 3u);
    EXPECT_EQ((*near)[0].id, id);
    EXPECT_EQ((*near)[0].cosine, 1.0f);
    std::vector<uint32_t> others;
    for (uint32_t o : {0u, 1u, 2u}) {
      if (o != id) others.push_back(o);
    }
    EXPECT_EQ((*near)[1].id, others[0]);
    EXPECT_EQ((*near)[2].id, others[1]);
  }
  auto one = table->Nearest(3u, 1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].id, 3u);
}

TEST(EmbeddingTableTest, DotMatchesDoubleReference) {
  for (uint32_t n : {1u, 7u, 8u, 9u, 63u, 100u}) {
    std::vector<float> a = RandomRows(1, n, 3), b = RandomRows(1, n, 4);
    double ref = 0;
    for (uint32_t i = 0; i < n; ++i) ref += static_cast<double>(a[i]) * b[i];
    EXPECT_NEAR(Dot(a, b), ref, 1e-5 * n) << n;
  }
}

// Nearest against a brute-force reference on a random table: for every rank r
// the cosine we report is the r-th largest true cosine (to float rounding), and
// the cosine we report for an id is that id's true cosine.
TEST(EmbeddingTableTest, NearestMatchesBruteForce) {
  constexpr uint32_t kVocab = 300, kDim = 37, kK = 12;
  const std::vector<float> rows = RandomRows(kVocab, kDim, 5);
  auto table = EmbeddingTable::Create(kVocab, kDim, rows);
  ASSERT_TRUE(table.ok());
  auto row = [&](uint32_t id) {
    return std::span<const float>(rows.data() + size_t{id} * kDim, kDim);
  };
  size_t exact_id_matches = 0;
  for (uint32_t q = 0; q < kVocab; q += 7) {
    std::vector<std::pair<double, uint32_t>> ref;
    for (uint32_t id = 0; id < kVocab; ++id)
      ref.emplace_back(id == q ? 1.0 : CosineRef(row(q), row(id)), id);
    std::sort(ref.begin(), ref.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });

    auto by_id = table->Nearest(q, kK);
    auto by_vector = table->Nearest(row(q), kK);
    ASSERT_TRUE(by_id.ok() && by_vector.ok());
    ASSERT_EQ(by_id->size(), kK);
    ASSERT_EQ(by_vector->size(), kK);
    EXPECT_EQ((*by_id)[0].id, q);
    for (uint32_t r = 0; r < kK; ++r) {
      EXPECT_NEAR((*by_id)[r].cosine, ref[r].first, 1e-5) << "query " << q << " rank " << r;
      EXPECT_NEAR((*by_vector)[r].cosine, ref[r].first, 1e-5) << "query " << q << " rank " << r;
      EXPECT_NEAR((*by_id)[r].cosine, CosineRef(row(q), row((*by_id)[r].id)), 1e-5);
      EXPECT_NEAR(table->Cosine(q, (*by_id)[r].id), (*by_id)[r].cosine, 1e-5);
      exact_id_matches += (*by_id)[r].id == ref[r].second;
    }
  }
  // Random rows have no near-ties, so the ids agree exactly as well.
  EXPECT_EQ(exact_id_matches, size_t{43} * kK);
}

}  // namespace
}  // namespace cllm::split
