// K-quant quantizers (Q4_K, Q6_K) following ggml's reference algorithm:
// per sub-block a weighted least-squares search for scale (and min), then
// the sub-block scales are themselves quantized to 6 bits (Q4_K) or int8
// (Q6_K) against one fp16 super-block scale, and the values are re-rounded
// against those final scales. Float operation order matters for bit
// equality with llama-quantize's output, so the arithmetic mirrors it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/blocks.h"
#include "engine/kernels/kernels.h"
#include "engine/quant/quantize.h"

namespace cllm::engine::quant_internal {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: all-zero group

int Clamp(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

// FitScaleMin finds scale s and min m (≤ 0) so that x ≈ s·L + m with L in
// [0, nmax], minimising Σ w·(s·L + m − x)². It starts from the plain range
// mapping and tries `n_step`+1 nudged inverse scales (rmin + rdelta·i),
// solving the 2×2 least-squares system for each. Returns s; *out_neg_min = −m.
float FitScaleMin(int n, int nmax, const float* x, const float* w, uint8_t* L, float* out_neg_min,
                  uint8_t* L_aux, float rmin, float rdelta, int n_step) {
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    *out_neg_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax));
    const float diff = scale * L[i] + min - x[i];
    best_error += w[i] * diff * diff;
  }
  for (int is = 0; is <= n_step; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
      L_aux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * static_cast<float>(l);
      sum_l2 += w[i] * static_cast<float>(l) * static_cast<float>(l);
      sum_xl += w[i] * static_cast<float>(l) * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float cur_error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * L_aux[i] + this_min - x[i];
      cur_error += w[i] * diff * diff;
    }
    if (cur_error < best_error) {
      std::copy(L_aux, L_aux + n, L);
      best_error = cur_error;
      scale = this_scale;
      min = this_min;
    }
  }
  *out_neg_min = -min;
  return scale;
}

// FitSymmetricScale finds s so that x ≈ s·(L − nmax) with L − nmax in
// [−nmax, nmax − 1], weighting by x² and trying 18 nudged scales around
// the one that maps the largest-magnitude element to −nmax.
float FitSymmetricScale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * static_cast<float>(l);
    sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sum_lx = sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * static_cast<float>(l);
      sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; ++i) {
        L[i] = static_cast<int8_t>(nmax + Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
      }
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// UnpackScaleMin reads sub-block j's 6-bit scale and min (see blocks.h).
void UnpackScaleMin(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

void QuantizeQ4_K(const float* x, void* dst, int64_t n_blocks) {
  auto* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQKK];        // final 4-bit codes of the super-block
  uint8_t L_aux[32];
  float weights[32];
  float scales[kQKK / 32], mins[kQKK / 32];  // per sub-block, before 6-bit rounding
  for (int64_t i = 0; i < n_blocks; ++i, x += kQKK) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kQKK / 32; ++j) {
      const float* xs = x + 32 * j;
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
      scales[j] = FitScaleMin(32, 15, xs, weights, L + 32 * j, &mins[j], L_aux, -1.0f, 0.1f, 20);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    std::memset(y[i].scales, 0, sizeof y[i].scales);
    for (int j = 0; j < kQKK / 32; ++j) {
      const int ls = std::min(63, NearestInt(inv_scale * scales[j]));
      const int lm = std::min(63, NearestInt(inv_min * mins[j]));
      if (j < 4) {
        y[i].scales[j] = static_cast<uint8_t>(ls);
        y[i].scales[j + 4] = static_cast<uint8_t>(lm);
      } else {
        y[i].scales[j + 4] = static_cast<uint8_t>((ls & 0x0f) | (lm & 0x0f) << 4);
        y[i].scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        y[i].scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    y[i].d = F32ToF16(max_scale / 63.0f);
    y[i].dmin = F32ToF16(max_min / 63.0f);
    // Re-round every value against the scales as they will be decoded.
    for (int j = 0; j < kQKK / 32; ++j) {
      int sc, m;
      UnpackScaleMin(j, y[i].scales, &sc, &m);
      const float d = F16ToF32(y[i].d) * static_cast<float>(sc);
      if (d == 0.0f) continue;
      const float dm = F16ToF32(y[i].dmin) * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        L[32 * j + l] = static_cast<uint8_t>(Clamp(NearestInt((x[32 * j + l] + dm) / d), 0, 15));
      }
    }
    uint8_t* q = y[i].qs;
    for (int j = 0; j < kQKK; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | L[j + l + 32] << 4);
    }
  }
}

void QuantizeQ6_K(const float* x, void* dst, int64_t n_blocks) {
  auto* y = static_cast<BlockQ6_K*>(dst);
  int8_t L[kQKK];          // codes + 32, in [0, 63]
  float scales[kQKK / 16];
  for (int64_t i = 0; i < n_blocks; ++i, x += kQKK) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < kQKK / 16; ++ib) {
      scales[ib] = FitSymmetricScale(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y[i].d = F32ToF16(1 / iscale);
    for (int ib = 0; ib < kQKK / 16; ++ib) {
      y[i].scales[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }
    for (int j = 0; j < kQKK / 16; ++j) {
      const float d = F16ToF32(y[i].d) * static_cast<float>(y[i].scales[j]);
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = static_cast<int8_t>(Clamp(NearestInt(x[16 * j + l] / d), -32, 31) + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < kQKK; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0x0f) | (q3 & 0x0f) << 4);
        ql[l + 32] = static_cast<uint8_t>((q2 & 0x0f) | (q4 & 0x0f) << 4);
        qh[l] = static_cast<uint8_t>((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
      }
    }
  }
}

}  // namespace cllm::engine::quant_internal
