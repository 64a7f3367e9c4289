// Scalar reference dot products and matrix multiplication.
//
// Weights are dequantized one row at a time into fp32 and multiplied with fp32
// activations, accumulating in double: the most precise (not the fastest)
// definition, against which SIMD kernels with 8-bit activation blocks will be
// checked with stated tolerances.
#include <vector>

#include "base/check.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/blocks.h"
#include "engine/kernels/simd_internal.h"

namespace cllm::engine {
namespace {

double Dot(const float* a, const float* b, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return acc;
}

}  // namespace

float DotRow(GgmlType type, const void* row, const float* x, int64_t n) {
  if (type == GgmlType::kF32) return static_cast<float>(Dot(static_cast<const float*>(row), x, n));
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(n));
  DequantizeRow(type, row, buf.data(), n);
  return static_cast<float>(Dot(buf.data(), x, n));
}

namespace simd {

void MatMulReferenceRows(GgmlType type, const void* w, int64_t n_rows, int64_t n_cols, const float* x,
                         int64_t n_tokens, float* out, int64_t r0, int64_t r1) {
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  const auto* base = static_cast<const uint8_t*>(w);
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(n_cols));
  for (int64_t r = r0; r < r1; ++r) {
    const void* row = base + static_cast<size_t>(r) * row_bytes;
    const float* wr;
    if (type == GgmlType::kF32) {
      wr = static_cast<const float*>(row);
    } else {
      // once per row, reused for every token (a load-time layout: the file's row unpacked first)
      DequantizeMatrixRow(type, w, r, n_cols, buf.data());
      wr = buf.data();
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      out[t * n_rows + r] = static_cast<float>(Dot(wr, x + t * n_cols, n_cols));
    }
  }
}

}  // namespace simd
}  // namespace cllm::engine
