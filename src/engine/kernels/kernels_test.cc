// Kernel tests: fp16/bf16 conversions, hand-built blocks with known values
// (catching bit-layout mistakes independently of the code under test), dot
// products and matmul against dequantize-then-multiply at odd sizes, and a
// cross-check on real tensors: quantized copies of the same weights in
// ../shared/models must dequantize close to the F32 original.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "engine/gguf/gguf.h"
#include "engine/kernels/blocks.h"
#include "engine/kernels/kernels.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

TEST(KernelF16Test, ExactValuesAndRounding) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(F16ToF32(0x7c00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // ties to even → 0
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);
  // Every finite half round-trips.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    ASSERT_EQ(F32ToF16(F16ToF32(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBf16(1.00390625f), 0x3f80);  // tie → even
}

TEST(KernelDequantTest, HandBuiltQ8_0AndQ4_0) {
  BlockQ8_0 q8{};
  q8.d = F32ToF16(0.5f);
  for (int j = 0; j < 32; ++j) q8.qs[j] = static_cast<int8_t>(j - 16);
  float y[32];
  DequantizeRow(GgmlType::kQ8_0, &q8, y, 32);
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[31], 7.5f);

  BlockQ4_0 q4{};
  q4.d = F32ToF16(2.0f);
  q4.qs[0] = 0x1f;  // low nibble 15 → x[0] = 7·2; high nibble 1 → x[16] = −7·2
  q4.qs[3] = 0x80;  // x[3] = −8·2, x[19] = 0
  DequantizeRow(GgmlType::kQ4_0, &q4, y, 32);
  EXPECT_EQ(y[0], 14.0f);
  EXPECT_EQ(y[16], -14.0f);
  EXPECT_EQ(y[3], -16.0f);
  EXPECT_EQ(y[19], 0.0f);
}

TEST(KernelDequantTest, HandBuiltQ5_0) {
  BlockQ5_0 b{};
  b.d = F32ToF16(1.0f);
  b.qh[0] = 0x01;  // 5th bit of x[0]
  b.qh[2] = 0x02;  // 5th bit of x[17] (bit 17 of the u32)
  b.qs[0] = 0x00;
  b.qs[1] = 0x30;  // x[17] low bits 3
  float y[32];
  DequantizeRow(GgmlType::kQ5_0, &b, y, 32);
  EXPECT_EQ(y[0], 0.0f);    // 16 − 16
  EXPECT_EQ(y[1], -16.0f);  // 0 − 16
  EXPECT_EQ(y[17], 3.0f);   // (16 + 3) − 16
}

TEST(KernelDequantTest, HandBuiltQ4_K) {
  BlockQ4_K b{};
  b.d = F32ToF16(1.0f);
  b.dmin = F32ToF16(0.5f);
  b.scales[0] = 2;      // sub-block 0 scale
  b.scales[4] = 4;      // sub-block 0 min → −2
  b.scales[1] = 3;      // sub-block 1 scale
  b.scales[8] = 0x21;   // sub-block 4: scale low nibble 1, min low nibble 2
  b.qs[0] = 0x53;       // x[0] = 2·3 − 2 = 4; x[32] = 3·5 − 0 = 15
  b.qs[64] = 0x07;      // x[128] (sub-block 4) = 1·7 − 0.5·2 = 6
  float y[256];
  DequantizeRow(GgmlType::kQ4_K, &b, y, 256);
  EXPECT_EQ(y[0], 4.0f);
  EXPECT_EQ(y[32], 15.0f);
  EXPECT_EQ(y[128], 6.0f);
}

TEST(KernelDequantTest, HandBuiltQ5_K) {
  BlockQ5_K b{};
  b.d = F32ToF16(1.0f);
  b.dmin = F32ToF16(1.0f);
  b.scales[0] = 1;   // sub-block 0: scale 1, min 0
  b.scales[1] = 2;   // sub-block 1: scale 2, min 0
  b.scales[5] = 3;   // sub-block 1 min 3
  b.qs[0] = 0x21;    // x[0] low 1; x[32] low 2
  b.qh[0] = 0x03;    // bit 0 → x[0] +16; bit 1 → x[32] +16
  b.qh[1] = 0x04;    // bit 2 → x[65] (sub-block 2) +16
  float y[256];
  DequantizeRow(GgmlType::kQ5_K, &b, y, 256);
  EXPECT_EQ(y[0], 1.0f * (1 + 16));
  EXPECT_EQ(y[32], 2.0f * (2 + 16) - 3.0f);
  EXPECT_EQ(y[65], 0.0f * 16);  // sub-block 2 has scale 0
}

TEST(KernelDequantTest, HandBuiltQ6_K) {
  BlockQ6_K b{};
  b.d = F32ToF16(0.25f);
  b.scales[0] = 4;   // x[0..15]
  b.scales[2] = -2;  // x[32..47]
  b.ql[0] = 0x21;    // x[0] low 1, x[64] low 2
  b.qh[0] = 0x02;    // x[0] high bits 2 → q = 33 − 32 = 1
  b.ql[32] = 0x05;   // x[32] low 5, high bits (qh[0]>>2)&3 = 0 → q = 5 − 32
  float y[256];
  DequantizeRow(GgmlType::kQ6_K, &b, y, 256);
  EXPECT_EQ(y[0], 0.25f * 4 * 1);
  EXPECT_EQ(y[32], 0.25f * -2 * (5 - 32));
}

// Random bytes are valid blocks for every type once the fp16 scales are sane.
Bytes RandomRow(GgmlType type, int64_t n, std::mt19937& rng) {
  Bytes row(RowSizeBytes(type, n));
  for (auto& b : row) b = static_cast<uint8_t>(rng());
  const TypeTraits* t = GetTypeTraits(type);
  auto set_f16 = [&](size_t off, float v) {
    uint16_t h = F32ToF16(v);
    std::memcpy(row.data() + off, &h, 2);
  };
  std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
  for (size_t blk = 0; blk < row.size() / t->type_size; ++blk) {
    size_t base = blk * t->type_size;
    switch (type) {
      case GgmlType::kF16: set_f16(base, scale(rng)); break;
      case GgmlType::kBF16: {
        uint16_t h = F32ToBf16(scale(rng));
        std::memcpy(row.data() + base, &h, 2);
        break;
      }
      case GgmlType::kF32: {
        float v = scale(rng);
        std::memcpy(row.data() + base, &v, 4);
        break;
      }
      case GgmlType::kQ4_1: case GgmlType::kQ5_1: case GgmlType::kQ4_K: case GgmlType::kQ5_K:
        set_f16(base, scale(rng));
        set_f16(base + 2, scale(rng));
        break;
      case GgmlType::kQ6_K: set_f16(base + 208, scale(rng)); break;
      default: set_f16(base, scale(rng)); break;
    }
  }
  return row;
}

constexpr GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0,
                               GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                               GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

TEST(KernelDotTest, DotAndMatMulMatchDequantizedReferenceAtOddSizes) {
  std::mt19937 rng(42);
  for (GgmlType type : kTypes) {
    const TypeTraits* t = GetTypeTraits(type);
    for (int64_t blocks : {1, 3, 7}) {
      int64_t n = t->block_size == 1 ? blocks * 37 : blocks * t->block_size;
      const int64_t rows = 5, tokens = 3;
      Bytes w;
      for (int r = 0; r < rows; ++r) {
        Bytes row = RandomRow(type, n, rng);
        w.insert(w.end(), row.begin(), row.end());
      }
      std::vector<float> x(static_cast<size_t>(n * tokens));
      std::normal_distribution<float> nd;
      for (auto& v : x) v = nd(rng);
      std::vector<float> out(static_cast<size_t>(rows * tokens));
      MatMulWith(Isa::kScalar, type, w.data(), rows, n, x.data(), tokens, out.data());  // the reference itself
      std::vector<float> deq(static_cast<size_t>(n));
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = w.data() + r * RowSizeBytes(type, n);
        DequantizeRow(type, row, deq.data(), n);
        for (int64_t tk = 0; tk < tokens; ++tk) {
          double ref = 0;
          for (int64_t i = 0; i < n; ++i) ref += static_cast<double>(deq[i]) * x[tk * n + i];
          EXPECT_NEAR(out[tk * rows + r], ref, 1e-4 * (1 + std::fabs(ref))) << t->name << " n=" << n;
          EXPECT_NEAR(DotRow(type, row, &x[tk * n], n), ref, 1e-4 * (1 + std::fabs(ref))) << t->name;
        }
      }
    }
  }
}

// Real data: the same trained weights stored as F32 and as Q8_0 / Q4_0 / Q5_0.
// Max error must be within the format's resolution (half a quantization step
// of the block's scale), which a mis-ordered bit layout would blow through.
void CompareWithF32(const char* quant_file, const char* tensor, GgmlType want_type, double max_rel) {
  CLLM_SHARED_PATH(f32_path, "models/stories260K-f32.gguf");
  CLLM_SHARED_PATH(q_path, std::string("models/") + quant_file);
  auto f = GgufFile::Open(f32_path).value();
  auto q = GgufFile::Open(q_path).value();
  const auto* tf = f.FindTensor(tensor);
  const auto* tq = q.FindTensor(tensor);
  ASSERT_TRUE(tf && tq);
  ASSERT_EQ(tq->type, want_type) << tensor;
  int64_t n = tq->n_elements();
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  DequantizeRow(GgmlType::kF32, tf->data, a.data(), n);
  DequantizeRow(tq->type, tq->data, b.data(), n);
  double max_abs = 0, max_err = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_abs = std::max(max_abs, std::fabs(double{a[i]}));
    max_err = std::max(max_err, std::fabs(double{a[i]} - b[i]));
  }
  EXPECT_LT(max_err, max_rel * max_abs) << quant_file << " " << tensor << ": max err " << max_err
                                        << " vs max |w| " << max_abs;
  EXPECT_GT(max_err, 0.0);  // really quantized
}

TEST(KernelRealDataTest, Q8_0MatchesF32Weights) {
  CompareWithF32("stories260K-q8_0.gguf", "blk.0.attn_q.weight", GgmlType::kQ8_0, 1.0 / 127);
  CompareWithF32("stories260K-q8_0.gguf", "blk.0.ffn_down.weight", GgmlType::kF16, 1e-3);
}

TEST(KernelRealDataTest, Q4_0AndQ5_0MatchF32Weights) {
  CompareWithF32("stories260K-q4_0.gguf", "blk.1.attn_k.weight", GgmlType::kQ4_0, 1.0 / 8);
  CompareWithF32("stories260K-q4_k_m.gguf", "blk.1.ffn_gate.weight", GgmlType::kQ5_0, 1.0 / 16);
}

// The qwen3 files hold the same random weights as Q8_0 and as a Q4_K/Q6_K mix.
TEST(KernelRealDataTest, Q4_KAndQ6_KMatchQ8_0OfTheSameWeights) {
  CLLM_SHARED_PATH(q8_path, "models/qwen3-tiny-random-q8_0.gguf");
  CLLM_SHARED_PATH(qk_path, "models/qwen3-tiny-random-q4_k_m.gguf");
  auto q8 = GgufFile::Open(q8_path).value();
  auto qk = GgufFile::Open(qk_path).value();
  for (const char* name : {"blk.0.attn_q.weight", "token_embd.weight", "blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}) {
    const auto* a = q8.FindTensor(name);
    const auto* b = qk.FindTensor(name);
    ASSERT_TRUE(a && b) << name;
    int64_t n = std::min<int64_t>(b->n_elements(), 256 * 1024);
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    DequantizeRow(a->type, a->data, x.data(), n);
    DequantizeRow(b->type, b->data, y.data(), n);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
      num += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
      den += double{x[i]} * x[i];
    }
    double rel_rms = std::sqrt(num / den);
    // Q4_K keeps ~4.5 bits, Q6_K ~6.5: relative RMS error well under 15% / 3%.
    double limit = b->type == GgmlType::kQ6_K ? 0.03 : 0.15;
    EXPECT_LT(rel_rms, limit) << name << " (" << GetTypeTraits(b->type)->name << ")";
    EXPECT_GT(rel_rms, 0.0) << name;
  }
}

}  // namespace
}  // namespace cllm::engine
