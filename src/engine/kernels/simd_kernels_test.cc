// SIMD kernels and the thread pool against the scalar reference.
//
// Every instruction set this machine has (AvailableIsas) runs every hot type
// at odd sizes (odd block counts, odd row counts across row chunks and
// threads, 1..11 tokens across token tiles). Tolerances: for quantized weights
// the kernels round activations to 8-bit blocks, x ≈ d·q with d = max|x|/127
// per block, so |Δ| ≤ Σ_blocks Σ|w_i|·d/2 — the bound checked here (plus the
// fp16 rounding of Q8_32 scales and fp32 summation slack); fp32/fp16 weights
// only differ by summation order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/kernels/blocks.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/simd_internal.h"
#include "engine/kernels/thread_pool.h"

namespace cllm::engine {
namespace {

// RandomWeights fills n_rows rows of `type` with random but well-formed
// blocks (scales in a realistic range, every quant bit pattern possible).
std::vector<uint8_t> RandomWeights(GgmlType type, int64_t n_rows, int64_t n_cols, std::mt19937& rng) {
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(n_rows));
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.001f, 0.02f);
  const TypeTraits* t = GetTypeTraits(type);
  const int64_t n_blocks = n_rows * (n_cols / t->block_size);
  auto f16 = [&](float f) { return F32ToF16(f); };
  for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
  for (int64_t i = 0; i < n_blocks; ++i) {
    uint8_t* blk = w.data() + static_cast<size_t>(i) * t->type_size;
    switch (type) {
      case GgmlType::kF32: {
        float f = normal(rng);
        std::memcpy(blk, &f, 4);
        break;
      }
      case GgmlType::kF16: {
        uint16_t h = f16(normal(rng));
        std::memcpy(blk, &h, 2);
        break;
      }
      case GgmlType::kQ4_K:
      case GgmlType::kQ5_K: {  // d, dmin first
        uint16_t d = f16(scale(rng)), dmin = f16(scale(rng));
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &dmin, 2);
        break;
      }
      case GgmlType::kQ6_K: {  // d last
        uint16_t d = f16(scale(rng));
        std::memcpy(blk + 208, &d, 2);
        break;
      }
      case GgmlType::kQ4_1:
      case GgmlType::kQ5_1: {
        uint16_t d = f16(scale(rng) * 10), m = f16(-scale(rng) * 50);
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &m, 2);
        break;
      }
      default: {  // Q8_0, Q4_0, Q5_0: d first
        uint16_t d = f16(scale(rng) * 10);
        std::memcpy(blk, &d, 2);
      }
    }
  }
  return w;
}

std::vector<float> RandomActs(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

// Bound returns the largest |SIMD − reference| allowed for out[t][r].
double Bound(GgmlType type, const float* w_row, const float* x, int64_t n_cols) {
  const simd::ActFormat f = simd::ActFormatFor(type);
  const int64_t block = f == simd::ActFormat::kQ8_256 ? 256 : 32;
  double abs_sum = 0;
  for (int64_t i = 0; i < n_cols; ++i) abs_sum += std::fabs(double{w_row[i]} * x[i]);
  const double fp_slack = 1e-5 * abs_sum + 1e-6;
  if (f == simd::ActFormat::kNone) return fp_slack;
  double q_err = 0;
  for (int64_t b = 0; b < n_cols; b += block) {
    double amax = 0, w_abs = 0;
    for (int64_t i = b; i < b + block; ++i) {
      amax = std::max(amax, std::fabs(double{x[i]}));
      w_abs += std::fabs(double{w_row[i]});
    }
    // Half a step, plus Q8_32's fp16-rounded scale: |q|·|d − fp16(d)| ≤ 127·d·2^-11.
    const double step = amax / 127.0;
    q_err += w_abs * (step / 2.0 + (block == 32 ? 127.0 * step / 2048.0 : 0.0));
  }
  return q_err * 1.001 + fp_slack;
}

struct Case {
  GgmlType type;
  int64_t n_cols;
};

// Odd block counts; F32/F16 widths leave a tail below 8 and 16 elements.
const Case kCases[] = {
    {GgmlType::kF32, 203},  {GgmlType::kF16, 203},  {GgmlType::kF16, 24},   {GgmlType::kQ8_0, 7 * 32},
    {GgmlType::kQ4_0, 7 * 32}, {GgmlType::kQ4_K, 3 * 256}, {GgmlType::kQ6_K, 3 * 256}, {GgmlType::kQ4_K, 256},
    {GgmlType::kQ6_K, 256}, {GgmlType::kQ5_K, 256}, {GgmlType::kQ4_1, 96}, {GgmlType::kQ5_0, 96},
};

TEST(SimdKernelTest, EveryIsaMatchesReferenceWithinActivationRounding) {
  std::mt19937 rng(42);
  constexpr int64_t kMaxTokens = 11;  // every tile size of 4 (AVX2) and 8 (AVX-512), and a second tile
  const int64_t n_rows = 37;  // odd, spans several 16-row chunks
  for (const Case& c : kCases) {
    auto w = RandomWeights(c.type, n_rows, c.n_cols, rng);
    auto x = RandomActs(kMaxTokens * c.n_cols, rng);
    if (c.type == GgmlType::kQ8_0) {  // worst case for maddubs saturation: w = −128, x = max
      for (int64_t i = 0; i < c.n_cols / 32; ++i) std::memset(w.data() + i * 34 + 2, 0x80, 32);
      for (int64_t i = 0; i < c.n_cols; ++i) x[static_cast<size_t>(i)] = 1.0f;
    }
    std::vector<float> w_deq(static_cast<size_t>(n_rows * c.n_cols));
    for (int64_t r = 0; r < n_rows; ++r) {
      DequantizeRow(c.type, w.data() + r * RowSizeBytes(c.type, c.n_cols), &w_deq[r * c.n_cols], c.n_cols);
    }
    for (int64_t n_tokens = 1; n_tokens <= kMaxTokens; ++n_tokens) {
      std::vector<float> want(static_cast<size_t>(n_tokens * n_rows));
      MatMulWith(Isa::kScalar, c.type, w.data(), n_rows, c.n_cols, x.data(), n_tokens, want.data());
      for (Isa isa : AvailableIsas()) {
        std::vector<float> got(want.size(), NAN);
        MatMulWith(isa, c.type, w.data(), n_rows, c.n_cols, x.data(), n_tokens, got.data());
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t r = 0; r < n_rows; ++r) {
            const double bound = Bound(c.type, &w_deq[r * c.n_cols], &x[t * c.n_cols], c.n_cols);
            ASSERT_NEAR(got[t * n_rows + r], want[t * n_rows + r], bound)
                << IsaName(isa) << " " << GetTypeTraits(c.type)->name << " cols=" << c.n_cols << " t=" << t
                << "/" << n_tokens << " r=" << r;
          }
        }
      }
    }
  }
}

// The serving scheduler relies on this: a token's outputs are bit-identical
// whether it is computed alone, in a batch, or with another thread count.
TEST(SimdKernelTest, OutputsDoNotDependOnBatchOrThreads) {
  std::mt19937 rng(7);
  const int64_t n_rows = 53, n_tokens = 11;  // a full 8-token tile and a partial one
  for (const Case& c : kCases) {
    auto w = RandomWeights(c.type, n_rows, c.n_cols, rng);
    auto x = RandomActs(n_tokens * c.n_cols, rng);
    for (Isa isa : AvailableIsas()) {
      std::vector<float> batched(static_cast<size_t>(n_tokens * n_rows));
      SetNumThreads(2);
      MatMulWith(isa, c.type, w.data(), n_rows, c.n_cols, x.data(), n_tokens, batched.data());
      for (int threads : {1, 3}) {
        SetNumThreads(threads);
        for (int64_t t = 0; t < n_tokens; ++t) {
          std::vector<float> alone(static_cast<size_t>(n_rows));
          MatMulWith(isa, c.type, w.data(), n_rows, c.n_cols, &x[t * c.n_cols], 1, alone.data());
          ASSERT_EQ(0, std::memcmp(alone.data(), &batched[t * n_rows], alone.size() * sizeof(float)))
              << IsaName(isa) << " " << GetTypeTraits(c.type)->name << " token " << t << " threads " << threads;
        }
      }
    }
  }
  SetNumThreads(0);
}

TEST(SimdKernelTest, ActivationRoundingWithinHalfStep) {
  std::mt19937 rng(3);
  auto x = RandomActs(512, rng);
  x[5] = 0.0f;
  std::fill(x.begin() + 256, x.begin() + 288, 0.0f);  // an all-zero 32-block: d = 0, qs = 0
  std::vector<simd::ActQ8_256> k(2);
  simd::QuantizeActRow(simd::ActFormat::kQ8_256, x.data(), 512, k.data());
  std::vector<simd::ActQ8_32> b(16);
  simd::QuantizeActRow(simd::ActFormat::kQ8_32, x.data(), 512, b.data());
  for (int i = 0; i < 512; ++i) {
    const auto& kb = k[i / 256];
    EXPECT_LE(std::fabs(kb.d * kb.qs[i % 256] - x[i]), kb.d / 2 * 1.0001f) << i;
    const auto& bb = b[i / 32];
    // Q8_32 stores d at fp16 precision: up to 127·d·2^-11 more.
    EXPECT_LE(std::fabs(bb.d * bb.qs[i % 32] - x[i]), bb.d * (0.5f + 127.0f / 2048.0f) * 1.001f) << i;
  }
  EXPECT_EQ(b[8].d, 0.0f);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += k[0].qs[g * 16 + j];
    EXPECT_EQ(k[0].bsums[g], s);
  }
  int s = 0;
  for (int8_t q : b[1].qs) s += q;
  EXPECT_EQ(b[1].sum, s);
}

TEST(SimdKernelTest, DispatchListsScalarAndActiveIsAvailable) {
  auto isas = AvailableIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
  EXPECT_TRUE(IsaAvailable(ActiveIsa()));
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    EXPECT_TRUE(IsaAvailable(Isa::kAvx2));
  }
#endif
}

TEST(ThreadPoolTest, RunCallsEveryChunkOnce) {
  for (int n : {1, 2, 5}) {
    ThreadPool pool(n);
    for (int64_t chunks : {0, 1, 2, 7, 100}) {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
        pool.Run(chunks, [&](int64_t c) {
          hits[static_cast<size_t>(c)].fetch_add(1);
          // Nested: inline inside a pool job; but an outer Run of 0 or 1
          // chunks is itself inline on the caller (no job), so this one may
          // use the pool's threads: count atomically (was a flaky data race).
          std::atomic<int> inner{0};
          pool.Run(3, [&](int64_t) { inner.fetch_add(1); });
          EXPECT_EQ(inner.load(), 3);
        });
        for (auto& h : hits) ASSERT_EQ(h.load(), 1) << n << " " << chunks;
      }
    }
  }
}

TEST(ThreadPoolTest, ParallelForCoversRangeInGrainMultiples) {
  SetNumThreads(3);
  EXPECT_EQ(NumThreads(), 3);
  for (int64_t n : {0, 1, 15, 16, 17, 100}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::mutex mu;
    std::set<int64_t> starts;
    ParallelFor(n, 16, [&](int64_t b, int64_t e) {
      std::lock_guard lock(mu);
      starts.insert(b);
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << n;
    for (int64_t s : starts) EXPECT_EQ(s % 16, 0) << n;
  }
  SetNumThreads(0);
  EXPECT_EQ(NumThreads(), DefaultNumThreads());
}

}  // namespace
}  // namespace cllm::engine

namespace cllm::engine {
namespace {

// MatMulGroup (q/k/v, gate/up in one job) gives each matrix the bits of a
// separate MatMul: shared activation formats (Q4_K with Q6_K), mixed ones
// (Q8_0 with Q4_K: no sharing), and fp32 weights; row counts that are not
// multiples of the 16-row chunk so pool ranges straddle matrices.
TEST(SimdKernelTest, MatMulGroupMatchesSeparateMatMuls) {
  std::mt19937 rng(21);
  const int64_t n_cols = 512;
  const std::vector<std::vector<GgmlType>> mixes = {
      {GgmlType::kQ4_K, GgmlType::kQ4_K, GgmlType::kQ6_K},
      {GgmlType::kQ8_0, GgmlType::kQ4_K},
      {GgmlType::kF32, GgmlType::kF16},
      {GgmlType::kQ5_K, GgmlType::kQ4_K},  // no SIMD kernel for the first
  };
  const int64_t rows_of[] = {37, 70, 19};
  for (const auto& mix : mixes) {
    for (int64_t n_tokens : {1, 6}) {
      auto x = RandomActs(n_tokens * n_cols, rng);
      std::vector<std::vector<uint8_t>> w;
      for (size_t m = 0; m < mix.size(); ++m) w.push_back(RandomWeights(mix[m], rows_of[m], n_cols, rng));
      for (Isa isa : AvailableIsas()) {
        for (int threads : {1, 2}) {
          SetNumThreads(threads);
          std::vector<std::vector<float>> got(mix.size());
          std::vector<MatMulSpec> specs;
          for (size_t m = 0; m < mix.size(); ++m) {
            got[m].resize(static_cast<size_t>(n_tokens * rows_of[m]));
            specs.push_back({mix[m], w[m].data(), rows_of[m], got[m].data()});
          }
          MatMulGroupWith(isa, specs.data(), static_cast<int>(specs.size()), n_cols, x.data(), n_tokens);
          for (size_t m = 0; m < mix.size(); ++m) {
            std::vector<float> want(got[m].size());
            MatMulWith(isa, mix[m], w[m].data(), rows_of[m], n_cols, x.data(), n_tokens, want.data());
            ASSERT_EQ(0, std::memcmp(want.data(), got[m].data(), want.size() * sizeof(float)))
                << IsaName(isa) << " matrix " << m << " " << GetTypeTraits(mix[m])->name << " tokens " << n_tokens;
          }
        }
      }
    }
  }
  SetNumThreads(0);
}

}  // namespace
}  // namespace cllm::engine

namespace cllm::engine {
namespace {

// kQ8_0x16 (kernels.h): Q8_0 rows interleaved in units of 16 at load time.
std::vector<uint8_t> Pack(const std::vector<uint8_t>& w, int64_t n_rows, int64_t n_cols) {
  std::vector<uint8_t> p(w.size());
  PackRows(GgmlType::kQ8_0, kQ8_0x16, w.data(), n_rows, n_cols, p.data());
  return p;
}

TEST(PackedQ8_0Test, LayoutIsInternalAndChosenForAvx512Only) {
  EXPECT_EQ(GetTypeTraitsById(static_cast<uint32_t>(kQ8_0x16)), nullptr);  // no file can name it
  ASSERT_NE(GetTypeTraits(kQ8_0x16), nullptr);
  EXPECT_EQ(RowSizeBytes(kQ8_0x16, 96), RowSizeBytes(GgmlType::kQ8_0, 96));
  EXPECT_EQ(PackedLayoutFor(Isa::kAvx512, GgmlType::kQ8_0, 1024), kQ8_0x16);
  EXPECT_EQ(PackedLayoutFor(Isa::kAvx512, GgmlType::kQ8_0, 1020), GgmlType::kQ8_0);  // not a multiple of 16
  EXPECT_EQ(PackedLayoutFor(Isa::kAvx512, GgmlType::kQ8_0, 1016), GgmlType::kQ8_0);
  EXPECT_EQ(PackedLayoutFor(Isa::kAvx2, GgmlType::kQ8_0, 1024), GgmlType::kQ8_0);
  EXPECT_EQ(PackedLayoutFor(Isa::kScalar, GgmlType::kQ8_0, 1024), GgmlType::kQ8_0);
}

TEST(PackedQ8_0Test, UnpackGivesTheFileRowsBack) {
  std::mt19937 rng(5);
  const int64_t n_rows = 48, n_cols = 5 * 32;
  auto w = RandomWeights(GgmlType::kQ8_0, n_rows, n_cols, rng);
  auto p = Pack(w, n_rows, n_cols);
  const size_t row_bytes = RowSizeBytes(GgmlType::kQ8_0, n_cols);
  for (int64_t r = 0; r < n_rows; ++r) {
    std::vector<BlockQ8_0> row(static_cast<size_t>(n_cols / 32));
    simd::UnpackQ8_0x16Row(p.data(), r, n_cols, row.data());
    ASSERT_EQ(0, std::memcmp(row.data(), w.data() + r * row_bytes, row_bytes)) << r;
  }
}

// Every ISA on packed weights against the scalar reference on the file's
// rows: the scalar path bit for bit (it unpacks), SIMD within the
// activation-rounding bound; 1..11 tokens; the worst case for the q + 128
// correction (q = −128, x at its maximum) in the first rows.
TEST(PackedQ8_0Test, EveryIsaMatchesTheReference) {
  std::mt19937 rng(9);
  const int64_t n_cols = 7 * 32;
  for (int64_t n_rows : {16, 48}) {
    auto w = RandomWeights(GgmlType::kQ8_0, n_rows, n_cols, rng);
    for (int64_t i = 0; i < n_cols / 32; ++i) std::memset(w.data() + i * 34 + 2, 0x80, 32);
    auto p = Pack(w, n_rows, n_cols);
    auto x = RandomActs(11 * n_cols, rng);
    for (int64_t i = 0; i < n_cols; ++i) x[static_cast<size_t>(i)] = 1.0f;
    std::vector<float> w_deq(static_cast<size_t>(n_rows * n_cols));
    for (int64_t r = 0; r < n_rows; ++r) {
      DequantizeRow(GgmlType::kQ8_0, w.data() + r * RowSizeBytes(GgmlType::kQ8_0, n_cols), &w_deq[r * n_cols], n_cols);
    }
    for (int64_t n_tokens = 1; n_tokens <= 11; ++n_tokens) {
      std::vector<float> want(static_cast<size_t>(n_tokens * n_rows));
      MatMulWith(Isa::kScalar, GgmlType::kQ8_0, w.data(), n_rows, n_cols, x.data(), n_tokens, want.data());
      for (Isa isa : AvailableIsas()) {
        std::vector<float> got(want.size(), NAN);
        MatMulWith(isa, kQ8_0x16, p.data(), n_rows, n_cols, x.data(), n_tokens, got.data());
        if (isa == Isa::kScalar) {
          ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
          continue;
        }
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t r = 0; r < n_rows; ++r) {
            const double bound = Bound(GgmlType::kQ8_0, &w_deq[r * n_cols], &x[t * n_cols], n_cols);
            ASSERT_NEAR(got[t * n_rows + r], want[t * n_rows + r], bound)
                << IsaName(isa) << " rows " << n_rows << " t=" << t << "/" << n_tokens << " r=" << r;
          }
        }
      }
    }
  }
}

// Bits do not depend on the batch, the threads, or a MatMulGroup whose
// earlier matrix (37 rows) makes thread ranges cut the 16-row units (a cut
// unit's group runs alone on 8 lanes, whole units on 16). 37 tokens: more
// than two prefill tiles of 16 (Q8_0 has no AMX kernel: kAmx runs the VNNI one).
TEST(PackedQ8_0Test, OutputsDoNotDependOnBatchThreadsOrGroup) {
  std::mt19937 rng(13);
  const int64_t n_cols = 256, n_rows = 80, n_tokens = 37;
  auto w = RandomWeights(GgmlType::kQ8_0, n_rows, n_cols, rng);
  auto p = Pack(w, n_rows, n_cols);
  auto other = RandomWeights(GgmlType::kQ4_0, 37, n_cols, rng);
  auto x = RandomActs(n_tokens * n_cols, rng);
  for (Isa isa : AvailableIsas()) {
    std::vector<float> batched(static_cast<size_t>(n_tokens * n_rows));
    SetNumThreads(2);
    MatMulWith(isa, kQ8_0x16, p.data(), n_rows, n_cols, x.data(), n_tokens, batched.data());
    for (int threads : {1, 3}) {
      SetNumThreads(threads);
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> alone(static_cast<size_t>(n_rows));
        MatMulWith(isa, kQ8_0x16, p.data(), n_rows, n_cols, &x[t * n_cols], 1, alone.data());
        ASSERT_EQ(0, std::memcmp(alone.data(), &batched[t * n_rows], alone.size() * sizeof(float)))
            << IsaName(isa) << " token " << t << " threads " << threads;
      }
      std::vector<float> o(static_cast<size_t>(n_tokens * 37)), g(batched.size(), NAN);
      const MatMulSpec specs[] = {{GgmlType::kQ4_0, other.data(), 37, o.data()}, {kQ8_0x16, p.data(), n_rows, g.data()}};
      MatMulGroupWith(isa, specs, 2, n_cols, x.data(), n_tokens);
      ASSERT_EQ(0, std::memcmp(g.data(), batched.data(), g.size() * sizeof(float))) << IsaName(isa) << " group";
    }
  }
  SetNumThreads(0);
}

// kQ4_Kx8 and kQ6_Kx8 (kernels.h): K-quant rows interleaved by 8 at load time.
struct KLayout {
  GgmlType file, packed;
};
constexpr KLayout kKLayouts[] = {{GgmlType::kQ4_K, kQ4_Kx8}, {GgmlType::kQ6_K, kQ6_Kx8}};

std::vector<uint8_t> PackK(const KLayout& l, const std::vector<uint8_t>& w, int64_t n_rows, int64_t n_cols) {
  std::vector<uint8_t> p(w.size());
  PackRows(l.file, l.packed, w.data(), n_rows, n_cols, p.data());
  return p;
}

TEST(PackedKQuantTest, LayoutsAreInternalSameSizeAndChosenForAvx512Only) {
  for (const KLayout& l : kKLayouts) {
    EXPECT_EQ(GetTypeTraitsById(static_cast<uint32_t>(l.packed)), nullptr);
    ASSERT_NE(GetTypeTraits(l.packed), nullptr);
    EXPECT_EQ(RowSizeBytes(l.packed, 768), RowSizeBytes(l.file, 768));
    EXPECT_EQ(PackedLayoutFor(Isa::kAvx512, l.file, 1024), l.packed);
    EXPECT_EQ(PackedLayoutFor(Isa::kAvx512, l.file, 1028), l.file);
    EXPECT_EQ(PackedLayoutFor(Isa::kAvx2, l.file, 1024), l.file);
    EXPECT_EQ(PackedLayoutFor(Isa::kScalar, l.file, 1024), l.file);
  }
  EXPECT_EQ(PackedLayoutFor(Isa::kAvx512, GgmlType::kQ5_K, 1024), GgmlType::kQ5_K);
}

// Random bytes everywhere but the fp16 scales: every 6-bit scale and min
// pattern, every int8 scale and every quant bit survive the round trip.
TEST(PackedKQuantTest, UnpackGivesTheFileRowsBack) {
  std::mt19937 rng(6);
  const int64_t n_rows = 24, n_cols = 3 * 256;
  for (const KLayout& l : kKLayouts) {
    auto w = RandomWeights(l.file, n_rows, n_cols, rng);
    auto p = PackK(l, w, n_rows, n_cols);
    const size_t row_bytes = RowSizeBytes(l.file, n_cols);
    for (int64_t r = 0; r < n_rows; ++r) {
      std::vector<uint8_t> row(row_bytes);
      UnpackRow(l.packed, p.data(), r, n_cols, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), w.data() + r * row_bytes, row_bytes)) << GetTypeTraits(l.file)->name << " row " << r;
    }
    std::vector<uint8_t> all(w.size());
    UnpackRows(l.packed, p.data(), n_rows, n_cols, all.data());
    EXPECT_TRUE(all == w);
    EXPECT_EQ(FileTypeOf(l.packed), l.file);
    std::vector<float> a(static_cast<size_t>(n_cols)), b(a.size());
    DequantizeMatrixRow(l.packed, p.data(), 13, n_cols, a.data());
    DequantizeRow(l.file, w.data() + 13 * row_bytes, b.data(), n_cols);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  }
}

// Every ISA on packed weights against the scalar reference on the file's
// rows (scalar: bit for bit; SIMD: within the activation-rounding bound),
// 1..11 tokens; the first 8 rows are the integer worst case: all quant and
// scale bits set (Q4_K: q = 15, scales and mins 63; Q6_K: q = 63, scale −1),
// activations all at +max.
TEST(PackedKQuantTest, EveryIsaMatchesTheReference) {
  std::mt19937 rng(10);
  const int64_t n_cols = 3 * 256;
  for (const KLayout& l : kKLayouts) {
    const size_t block = GetTypeTraits(l.file)->type_size;
    for (int64_t n_rows : {8, 40}) {
      auto w = RandomWeights(l.file, n_rows, n_cols, rng);
      for (int64_t i = 0; i < 8 * (n_cols / 256); ++i) {
        uint8_t* blk = w.data() + i * block;
        if (l.file == GgmlType::kQ4_K) std::memset(blk + 4, 0xff, block - 4);
        else std::memset(blk, 0xff, block - 2);
      }
      auto p = PackK(l, w, n_rows, n_cols);
      auto x = RandomActs(11 * n_cols, rng);
      for (int64_t i = 0; i < n_cols; ++i) x[static_cast<size_t>(i)] = 1.0f;
      std::vector<float> w_deq(static_cast<size_t>(n_rows * n_cols));
      for (int64_t r = 0; r < n_rows; ++r) {
        DequantizeRow(l.file, w.data() + r * RowSizeBytes(l.file, n_cols), &w_deq[r * n_cols], n_cols);
      }
      for (int64_t n_tokens = 1; n_tokens <= 11; ++n_tokens) {
        std::vector<float> want(static_cast<size_t>(n_tokens * n_rows));
        MatMulWith(Isa::kScalar, l.file, w.data(), n_rows, n_cols, x.data(), n_tokens, want.data());
        for (Isa isa : AvailableIsas()) {
          std::vector<float> got(want.size(), NAN);
          MatMulWith(isa, l.packed, p.data(), n_rows, n_cols, x.data(), n_tokens, got.data());
          if (isa == Isa::kScalar) {
            ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
            continue;
          }
          for (int64_t t = 0; t < n_tokens; ++t) {
            for (int64_t r = 0; r < n_rows; ++r) {
              const double bound = Bound(l.file, &w_deq[r * n_cols], &x[t * n_cols], n_cols);
              ASSERT_NEAR(got[t * n_rows + r], want[t * n_rows + r], bound)
                  << GetTypeTraits(l.file)->name << " " << IsaName(isa) << " rows " << n_rows << " t=" << t << "/"
                  << n_tokens << " r=" << r;
            }
          }
        }
      }
    }
  }
}

// Bits do not depend on the batch, the threads, or a MatMulGroup whose
// earlier matrix (37 rows) makes thread ranges cut the 8-row groups. 37
// tokens and 72 rows: with AMX (Q4_K), whole 16-token tiles of whole 16-row
// units on the tile unit, the rest on vectors.
TEST(PackedKQuantTest, OutputsDoNotDependOnBatchThreadsOrGroup) {
  if (!IsaAvailable(Isa::kAmx)) std::printf("NOTE: no AMX on this machine (or not granted): its kernels are not run\n");
  std::mt19937 rng(14);
  const int64_t n_cols = 512, n_rows = 72, n_tokens = 37;
  for (const KLayout& l : kKLayouts) {
    auto w = RandomWeights(l.file, n_rows, n_cols, rng);
    auto p = PackK(l, w, n_rows, n_cols);
    auto other = RandomWeights(GgmlType::kQ4_K, 37, n_cols, rng);
    auto x = RandomActs(n_tokens * n_cols, rng);
    for (Isa isa : AvailableIsas()) {
      std::vector<float> batched(static_cast<size_t>(n_tokens * n_rows));
      SetNumThreads(2);
      MatMulWith(isa, l.packed, p.data(), n_rows, n_cols, x.data(), n_tokens, batched.data());
      for (int threads : {1, 3}) {
        SetNumThreads(threads);
        for (int64_t t = 0; t < n_tokens; ++t) {
          std::vector<float> alone(static_cast<size_t>(n_rows));
          MatMulWith(isa, l.packed, p.data(), n_rows, n_cols, &x[t * n_cols], 1, alone.data());
          ASSERT_EQ(0, std::memcmp(alone.data(), &batched[t * n_rows], alone.size() * sizeof(float)))
              << IsaName(isa) << " token " << t << " threads " << threads;
        }
        std::vector<float> o(static_cast<size_t>(n_tokens * 37)), g(batched.size(), NAN);
        const MatMulSpec specs[] = {{GgmlType::kQ4_K, other.data(), 37, o.data()}, {l.packed, p.data(), n_rows, g.data()}};
        MatMulGroupWith(isa, specs, 2, n_cols, x.data(), n_tokens);
        ASSERT_EQ(0, std::memcmp(g.data(), batched.data(), g.size() * sizeof(float))) << IsaName(isa) << " group";
      }
    }
  }
  SetNumThreads(0);
}

// Decode steps (at most 8 tokens) under both DecodeTuning choices (8 lanes
// with no prefetch for 1–2 tokens; group pairs on 16 lanes for 3–8 and
// prefetch ahead, bounded by the matrix's end): every batch size gives each
// token the bits it gets alone, on every ISA, at 1 and 3 threads and in a
// MatMulGroup whose earlier 37-row matrix makes ranges cut the groups (and
// pairs; the earlier matrix shares the activation format, so the two are
// one job). K-quants: 40 rows, five groups, the last one's pair missing.
TEST(PackedKernelTest, DecodeBatchesMatchSingleTokensUnderEveryTuning) {
  struct TuningGuard {  // restores the CPU's tuning however the test ends
    ~TuningGuard() { simd::ResetDecodeTuning(); }
  } guard;
  std::mt19937 rng(15);
  const int64_t n_cols = 512;
  struct DecodeCase {
    GgmlType file, packed, other;
    int64_t rows;
  };
  const DecodeCase cases[] = {{GgmlType::kQ4_K, kQ4_Kx8, GgmlType::kQ4_K, 40},
                              {GgmlType::kQ6_K, kQ6_Kx8, GgmlType::kQ4_K, 40},
                              {GgmlType::kQ8_0, kQ8_0x16, GgmlType::kQ4_0, 80}};
  for (const DecodeCase& c : cases) {
    auto w = RandomWeights(c.file, c.rows, n_cols, rng);
    std::vector<uint8_t> p(w.size());
    PackRows(c.file, c.packed, w.data(), c.rows, n_cols, p.data());
    auto other = RandomWeights(c.other, 37, n_cols, rng);
    auto x = RandomActs(8 * n_cols, rng);
    for (simd::DecodeTuning tuning : {simd::DecodeTuning::kAmd, simd::DecodeTuning::kIntel}) {
      simd::SetDecodeTuning(tuning);
      for (Isa isa : AvailableIsas()) {
        SetNumThreads(1);
        std::vector<float> alone(static_cast<size_t>(8 * c.rows));
        for (int64_t t = 0; t < 8; ++t) {
          MatMulWith(isa, c.packed, p.data(), c.rows, n_cols, &x[t * n_cols], 1, &alone[t * c.rows]);
        }
        for (int threads : {1, 3}) {
          SetNumThreads(threads);
          for (int64_t n_tokens = 1; n_tokens <= 8; ++n_tokens) {
            const std::string where = std::string(GetTypeTraits(c.file)->name) + " " + IsaName(isa) + " tuning " +
                                      std::to_string(static_cast<int>(tuning)) + " threads " +
                                      std::to_string(threads) + " tokens " + std::to_string(n_tokens);
            std::vector<float> got(static_cast<size_t>(n_tokens * c.rows), NAN);
            MatMulWith(isa, c.packed, p.data(), c.rows, n_cols, x.data(), n_tokens, got.data());
            ASSERT_EQ(0, std::memcmp(got.data(), alone.data(), got.size() * sizeof(float))) << where;
            std::vector<float> o(static_cast<size_t>(n_tokens * 37)), g(got.size(), NAN);
            const MatMulSpec specs[] = {{c.other, other.data(), 37, o.data()}, {c.packed, p.data(), c.rows, g.data()}};
            MatMulGroupWith(isa, specs, 2, n_cols, x.data(), n_tokens);
            ASSERT_EQ(0, std::memcmp(g.data(), alone.data(), g.size() * sizeof(float))) << where << " group";
          }
        }
      }
    }
  }
  SetNumThreads(0);
}

}  // namespace
}  // namespace cllm::engine
