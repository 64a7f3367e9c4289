// Legacy 32-element quantizers (Q4_0, Q5_0, Q8_0) and the QuantizeRow
// dispatch. The K-quants live in quantize_k.cc.
#include "engine/quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "base/check.h"
#include "engine/kernels/blocks.h"
#include "engine/kernels/kernels.h"

namespace cllm::engine {

namespace quant_internal {

int NearestInt(float x) {
  // Adding 1.5·2^23 puts the integer part in the low mantissa bits with the
  // FPU's round-to-nearest-even; ggml relies on the same trick.
  float v = x + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace quant_internal

namespace {

// SignedAbsMax returns the element of largest magnitude (first one on ties),
// keeping its sign: Q4_0/Q5_0 map it to the most negative code.
float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void QuantizeQ4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = SignedAbsMax(x, kQK) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      // ggml truncates (x·id + 8.5) toward zero through an int8 cast.
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

void QuantizeQ5_0(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = SignedAbsMax(x, kQK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 16.5f)));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | (q1 & 0x0f) << 4);
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + kQK / 2);
    }
    for (int b = 0; b < 4; ++b) y[i].qh[b] = static_cast<uint8_t>(qh >> (8 * b));
  }
}

}  // namespace

bool CanQuantize(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16:
    case GgmlType::kQ4_0: case GgmlType::kQ5_0: case GgmlType::kQ8_0:
    case GgmlType::kQ4_K: case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n) {
  const TypeTraits* t = GetTypeTraits(type);
  CLLM_CHECK(t != nullptr && CanQuantize(type) && n >= 0 && n % t->block_size == 0);
  const int64_t nb = n / t->block_size;
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case GgmlType::kF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = F32ToF16(src[i]);
      return;
    }
    case GgmlType::kBF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = F32ToBf16(src[i]);
      return;
    }
    case GgmlType::kQ4_0: return QuantizeQ4_0(src, static_cast<BlockQ4_0*>(dst), nb);
    case GgmlType::kQ5_0: return QuantizeQ5_0(src, static_cast<BlockQ5_0*>(dst), nb);
    case GgmlType::kQ8_0: return QuantizeQ8_0(src, static_cast<BlockQ8_0*>(dst), nb);
    case GgmlType::kQ4_K: return quant_internal::QuantizeQ4_K(src, dst, nb);
    case GgmlType::kQ6_K: return quant_internal::QuantizeQ6_K(src, dst, nb);
    default: CLLM_CHECK_MSG(false, "unsupported quantization type");
  }
}

void QuantizeRows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_cols, int n_threads) {
  if (n_rows <= 0) return;
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      QuantizeRow(type, src + r * n_cols, static_cast<uint8_t*>(dst) + static_cast<size_t>(r) * row_bytes, n_cols);
    }
  };
  const int64_t workers = std::clamp<int64_t>(n_threads, 1, n_rows);
  if (workers <= 1) return run(0, n_rows);
  std::vector<std::thread> threads;
  const int64_t per = (n_rows + workers - 1) / workers;
  for (int64_t w = 1; w < workers; ++w) threads.emplace_back(run, std::min(n_rows, w * per), std::min(n_rows, (w + 1) * per));
  run(0, std::min(n_rows, per));
  for (auto& t : threads) t.join();
}

int DefaultQuantThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace cllm::engine
