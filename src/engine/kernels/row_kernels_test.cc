// The element-wise row kernels (F32ToF16Row, SoftmaxRow, SwiGluRow) on every
// instruction set against the scalar reference: F16 conversion bit for bit,
// exp-based kernels within a few fp32 ulps, at lengths with and without a
// tail below the vector width.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/kernels/simd_internal.h"

namespace cllm::engine {
namespace {

class RowKernelTest : public ::testing::Test {
 protected:
  void TearDown() override { SetActiveIsa(saved_); }
  Isa saved_ = ActiveIsa();
};

TEST_F(RowKernelTest, F32ToF16RowIsExactOnEveryIsa) {
  std::mt19937 rng(11);
  std::vector<float> x;
  // Specials: zeros, subnormal halves, the rounding midpoints, overflow, inf, NaN.
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65520.0f, 1e6f, 5.9604645e-8f, 2.9802322e-8f, 2.98e-8f,
                  6.1035156e-5f, 6.09e-5f, 1.00048828125f, 1.00146484375f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                  std::bit_cast<float>(0x7f812345u), std::bit_cast<float>(0xffc00001u)}) {
    x.push_back(f);
  }
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 4000; ++i) x.push_back(std::bit_cast<float>(bits(rng)));  // every exponent
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int i = 0; i < 1003; ++i) x.push_back(normal(rng));
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = F32ToF16(x[i]);
  for (Isa isa : AvailableIsas()) {
    SetActiveIsa(isa);
    for (size_t offset : {size_t{0}, size_t{3}}) {  // the NaN groups land in different 8-lane groups
      std::vector<uint16_t> got(x.size() - offset);
      F32ToF16Row(x.data() + offset, got.data(), static_cast<int64_t>(got.size()));
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], want[i + offset]) << IsaName(isa) << " element " << i + offset << " bits "
                                            << std::bit_cast<uint32_t>(x[i + offset]);
      }
    }
  }
}

TEST_F(RowKernelTest, SimdActivationRoundingGivesTheReferenceBytes) {
  if (!IsaAvailable(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(15);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(1024);
  for (auto& v : x) v = normal(rng);
  // Block 0: max 127 so the scale is 1 and x·id lands on ties (k + 0.5) of both signs.
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 64) * 0.5f * (i % 3 == 0 ? -1.0f : 1.0f);
  x[3] = 127.0f;
  std::fill(x.begin() + 256, x.begin() + 288, 0.0f);               // an all-zero 32-block
  x[300] = std::numeric_limits<float>::quiet_NaN();                 // NaN: ignored by max, rounds to 0
  x[600] = std::numeric_limits<float>::infinity();                  // inf: scale inf, every q 0
  x[700] = 1e-40f;                                                  // subnormal block member
  for (simd::ActFormat f : {simd::ActFormat::kQ8_32, simd::ActFormat::kQ8_256}) {
    const size_t bytes = simd::ActRowBytes(f, 1024);
    std::vector<uint8_t> want(bytes), got(bytes);
    simd::QuantizeActRow(f, x.data(), 1024, want.data());
    simd::Avx2QuantizeActRow(f, x.data(), 1024, got.data());
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(got[i], want[i]) << "format " << static_cast<int>(f) << " byte " << i;
  }
}

TEST_F(RowKernelTest, SoftmaxRowMatchesReference) {
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t n : {1, 5, 8, 13, 64, 203}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    x[0] = -200.0f;  // far below the max: exp underflows
    SetActiveIsa(Isa::kScalar);
    std::vector<float> want = x;
    SoftmaxRow(want.data(), n);
    for (Isa isa : AvailableIsas()) {
      SetActiveIsa(isa);
      std::vector<float> got = x;
      SoftmaxRow(got.data(), n);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(got[i], want[i], 2e-6 * want[i] + 1e-30) << IsaName(isa) << " n " << n << " i " << i;
        sum += got[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << IsaName(isa);
    }
  }
}

TEST_F(RowKernelTest, SwiGluRowMatchesReference) {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 5.0f);
  for (int64_t n : {1, 7, 16, 203}) {
    std::vector<float> gate(static_cast<size_t>(n)), up(gate.size());
    for (auto& v : gate) v = normal(rng);
    for (auto& v : up) v = normal(rng);
    gate[0] = -120.0f;  // e^120 overflows fp32 in the reference: silu → −0
    if (n > 1) gate[1] = 95.0f;
    SetActiveIsa(Isa::kScalar);
    std::vector<float> want(gate.size());
    SwiGluRow(gate.data(), up.data(), n, want.data());
    for (Isa isa : AvailableIsas()) {
      SetActiveIsa(isa);
      std::vector<float> got(gate.size());
      SwiGluRow(gate.data(), up.data(), n, got.data());
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(got[i], want[i], 2e-6 * std::fabs(want[i]) + 1e-30) << IsaName(isa) << " n " << n << " i " << i;
      }
      std::vector<float> in_place = gate;  // out == gate, as the forward pass calls it
      SwiGluRow(in_place.data(), up.data(), n, in_place.data());
      EXPECT_EQ(0, std::memcmp(in_place.data(), got.data(), got.size() * sizeof(float))) << IsaName(isa);
    }
  }
}

TEST_F(RowKernelTest, AttendHeadMatchesReference) {
  std::mt19937 rng(14);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t hd : {128, 64, 40, 13}) {  // register-held output blocks of 64, and tails
    for (int64_t len : {1, 3, 8, 9, 37}) {  // groups of 8 positions, and tails
      std::vector<float> q(static_cast<size_t>(hd)), k(static_cast<size_t>(len * hd)), v(k.size());
      for (auto* vec : {&q, &k, &v}) {
        for (auto& x : *vec) x = normal(rng);
      }
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      SetActiveIsa(Isa::kScalar);
      std::vector<float> scores(static_cast<size_t>(len)), want(q.size());
      AttendHead(q.data(), k.data(), v.data(), len, hd, scale, scores.data(), want.data());
      for (Isa isa : AvailableIsas()) {
        SetActiveIsa(isa);
        std::vector<float> got(q.size());
        AttendHead(q.data(), k.data(), v.data(), len, hd, scale, scores.data(), got.data());
        for (int64_t i = 0; i < hd; ++i) {
          EXPECT_NEAR(got[i], want[i], 1e-5f) << IsaName(isa) << " hd " << hd << " len " << len << " i " << i;
        }
      }
    }
  }
}

// BlockedKv is one KV head's keys and values laid out as the KV cache keeps
// them: `len` rows in blocks of `block`, a row stride wider than the head,
// random F16 values (F32 copies hold the same values exactly).
struct BlockedKv {
  BlockedKv(int64_t len, int64_t head_dim, int64_t block_size, int64_t row_stride, bool f16, std::mt19937& rng)
      : hd(head_dim), block(block_size), stride(row_stride) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t n_blocks = (len + block - 1) / block;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const size_t n = static_cast<size_t>(block * stride);
      kh.emplace_back(n), vh.emplace_back(n), kf.emplace_back(n), vf.emplace_back(n);
      for (size_t i = 0; i < n; ++i) {
        kh[b][i] = F32ToF16(normal(rng)), vh[b][i] = F32ToF16(normal(rng));
        kf[b][i] = F16ToF32(kh[b][i]), vf[b][i] = F16ToF32(vh[b][i]);
      }
      kb.push_back(f16 ? static_cast<const void*>(kh[b].data()) : kf[b].data());
      vb.push_back(f16 ? static_cast<const void*>(vh[b].data()) : vf[b].data());
    }
    k = KvRows{kb.data(), block, stride, f16};
    v = KvRows{vb.data(), block, stride, f16};
  }
  // Contiguous is rows [0, len) of the keys (or values) as one [len, hd] F32 array.
  std::vector<float> Contiguous(bool keys, int64_t len) const {
    const auto& src = keys ? kf : vf;
    std::vector<float> out(static_cast<size_t>(len * hd));
    for (int64_t p = 0; p < len; ++p) {
      for (int64_t i = 0; i < hd; ++i) out[p * hd + i] = src[p / block][(p % block) * stride + i];
    }
    return out;
  }

  int64_t hd, block, stride;
  std::vector<std::vector<uint16_t>> kh, vh;
  std::vector<std::vector<float>> kf, vf;
  std::vector<const void*> kb, vb;
  KvRows k{}, v{};
};

// The KV cache's layout: F16 (or F32) rows in blocks, a row stride wider
// than the head. AttendHead over it must give exactly the bits of the same
// call on the rows converted to one contiguous F32 array, on every ISA.
TEST_F(RowKernelTest, AttendHeadOverBlockedF16RowsIsExact) {
  std::mt19937 rng(15);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t hd : {128, 64, 40, 13}) {
    for (int64_t len : {1, 7, 8, 9, 33, 70}) {
      for (int64_t block : {1, 5, 8, 32}) {
        for (bool f16 : {true, false}) {
          std::vector<float> q(static_cast<size_t>(hd));
          for (auto& x : q) x = normal(rng);
          const BlockedKv kv(len, hd, block, hd * 3 + 1, f16, rng);  // other heads sit between rows
          const std::vector<float> kc = kv.Contiguous(true, len), vc = kv.Contiguous(false, len);
          const KvRows &k = kv.k, &v = kv.v;
          const float scale = 0.125f;
          std::vector<float> scores(static_cast<size_t>(len)), want(q.size()), got(q.size()), ref(q.size());
          SetActiveIsa(Isa::kScalar);
          AttendHead(q.data(), k, v, len, hd, scale, scores.data(), ref.data());
          for (Isa isa : AvailableIsas()) {
            SetActiveIsa(isa);
            AttendHead(q.data(), kc.data(), vc.data(), len, hd, scale, scores.data(), want.data());
            AttendHead(q.data(), k, v, len, hd, scale, scores.data(), got.data());
            EXPECT_EQ(0, std::memcmp(want.data(), got.data(), got.size() * sizeof(float)))
                << IsaName(isa) << " hd " << hd << " len " << len << " block " << block << " f16 " << f16;
            for (int64_t i = 0; i < hd; ++i) ASSERT_NEAR(got[i], ref[i], 1e-5f) << IsaName(isa);
          }
        }
      }
    }
  }
}

// AttendHeads (many queries over the same rows, tiled) must give each query
// exactly AttendHead's bits on every ISA: tiles of 1–4 queries, lengths that
// differ inside a tile (prefill's causal prefixes) or not (GQA heads), odd
// head sizes (256: two 128-float output passes), blocked F16 and F32 rows in
// blocks of 8 and of 6 (not a multiple of the 4-position score tiles; the
// next block's rows are prefetched while one is read).
TEST_F(RowKernelTest, AttendHeadsGivesEachQueryAttendHeadsBits) {
  std::mt19937 rng(16);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t hd : {256, 128, 64, 40, 13}) {
    for (bool f16 : {true, false}) {
      for (int64_t block : {8, 6}) {
        const int64_t max_len = 45;
        const BlockedKv kv(max_len, hd, block, hd * 2 + 3, f16, rng);
        const KvRows &k = kv.k, &v = kv.v;
        // prefill-like (consecutive lengths, 2 heads each), GQA decode (equal), mixed and short
        const std::vector<std::vector<int64_t>> cases = {
            {30, 30, 31, 31, 32, 32, 33, 33, 34, 34}, {45, 45}, {45, 45, 45, 45, 45, 45, 45},
            {1, 9, 4, 45, 2, 17}, {3}, {0, 5, 5}};
        for (const auto& lens : cases) {
          const int64_t n = static_cast<int64_t>(lens.size());
          std::vector<float> qv(static_cast<size_t>(n * hd));
          for (auto& x : qv) x = normal(rng);
          std::vector<AttnQuery> qs;
          std::vector<float> got(static_cast<size_t>(n * hd), -1.0f), want(got.size());
          for (int64_t i = 0; i < n; ++i) qs.push_back(AttnQuery{&qv[i * hd], lens[i], &got[i * hd]});
          std::vector<float> scores(static_cast<size_t>(n * max_len));
          const float scale = 0.09f;
          for (Isa isa : AvailableIsas()) {
            SetActiveIsa(isa);
            for (int64_t i = 0; i < n; ++i) {
              if (lens[i] == 0) continue;  // AttendHead over nothing is not a case the model makes
              AttendHead(&qv[i * hd], k, v, lens[i], hd, scale, scores.data(), &want[i * hd]);
            }
            std::fill(got.begin(), got.end(), -1.0f);
            AttendHeads(qs.data(), n, k, v, hd, scale, scores.data());
            for (int64_t i = 0; i < n; ++i) {
              if (lens[i] == 0) continue;
              EXPECT_EQ(0, std::memcmp(&want[i * hd], &got[i * hd], static_cast<size_t>(hd) * sizeof(float)))
                  << IsaName(isa) << " hd " << hd << " f16 " << f16 << " block " << block << " query " << i
                  << " of " << n << " len " << lens[i];
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace cllm::engine
