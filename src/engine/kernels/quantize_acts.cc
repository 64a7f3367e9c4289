// Rounding of activation rows to 8-bit blocks for the integer dot products
// of the SIMD kernels. Plain C++ on purpose: the result must be the same
// whatever kernel reads it, and it costs O(n_tokens · n_cols) against the
// matmul's O(n_rows · n_cols).
#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/simd_internal.h"

namespace cllm::engine::simd {

ActFormat ActFormatFor(GgmlType type) {
  if (type == kQ8_0x16) return ActFormat::kQ8_32;  // load-time layouts, not enumerators
  if (type == kQ4_Kx8 || type == kQ6_Kx8) return ActFormat::kQ8_256;
  switch (type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0: return ActFormat::kQ8_32;
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K: return ActFormat::kQ8_256;
    default: return ActFormat::kNone;
  }
}

size_t ActRowBytes(ActFormat f, int64_t n) {
  switch (f) {
    case ActFormat::kQ8_32: return static_cast<size_t>(n / 32) * sizeof(ActQ8_32);
    case ActFormat::kQ8_256: return static_cast<size_t>(n / 256) * sizeof(ActQ8_256);
    case ActFormat::kNone: return 0;
  }
  return 0;
}

namespace {

// QuantizeBlock sets d = max|x| / 127 and qs = round(x / d) (round half
// away from zero), returns d.
float QuantizeBlock(const float* x, int n, int8_t* qs) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) {
    const float v = std::round(x[i] * id);
    qs[i] = std::isnan(v) ? int8_t{0} : static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
  }
  return d;
}

}  // namespace

void QuantizeActRow(ActFormat f, const float* x, int64_t n, void* out) {
  if (f == ActFormat::kQ8_32) {
    CLLM_CHECK(n % 32 == 0);
    auto* b = static_cast<ActQ8_32*>(out);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
      // The scale is kept at fp16 precision, as in llama.cpp's Q8_0 blocks
      // (q is rounded with the exact scale, then d is stored as fp16).
      b[i].d = F16ToF32(F32ToF16(QuantizeBlock(x, 32, b[i].qs)));
      int32_t s = 0;
      for (int8_t q : b[i].qs) s += q;
      b[i].sum = s;
    }
  } else if (f == ActFormat::kQ8_256) {
    CLLM_CHECK(n % 256 == 0);
    auto* b = static_cast<ActQ8_256*>(out);
    for (int64_t i = 0; i < n / 256; ++i, x += 256) {
      b[i].d = QuantizeBlock(x, 256, b[i].qs);
      for (int g = 0; g < 16; ++g) {
        int s = 0;
        for (int j = 0; j < 16; ++j) s += b[i].qs[g * 16 + j];
        b[i].bsums[g] = static_cast<int16_t>(s);
      }
    }
  }
}

}  // namespace cllm::engine::simd
