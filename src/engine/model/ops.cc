#include "engine/model/ops.h"

#include <cmath>
#include <vector>

namespace cllm::engine::ops {

void RmsNorm(const float* x, const float* w, int n, float eps, float* out) {
  // Eight independent double sums (products of floats are exact in double):
  // one serial chain of n additions cost more than the rest of the norm.
  double acc[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += static_cast<double>(x[i + j]) * x[i + j];
  }
  double ss = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void RopeCosSin(int n_rot, int pos, float base, float* cs) { RopeCosSin(n_rot, pos, base, RopeScaling{}, cs); }

void RopeCosSin(int n_rot, int pos, float base, const RopeScaling& scaling, float* cs) {
  for (int i = 0; i < n_rot / 2; ++i) {
    double theta = pos * std::pow(static_cast<double>(base), -2.0 * i / n_rot);
    if (scaling.freq_scale != 1.0f) theta *= scaling.freq_scale;
    if (scaling.freq_factors != nullptr) theta /= scaling.freq_factors[i];
    cs[2 * i] = static_cast<float>(std::cos(theta)) * scaling.mscale;
    cs[2 * i + 1] = static_cast<float>(std::sin(theta)) * scaling.mscale;
  }
}

void RopeApply(float* head, int n_rot, const float* cs, RopeStyle style) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    float* a = style == RopeStyle::kNormal ? head + 2 * i : head + i;
    float* b = style == RopeStyle::kNormal ? head + 2 * i + 1 : head + i + half;
    const float x0 = *a, x1 = *b;
    *a = x0 * c - x1 * s;
    *b = x0 * s + x1 * c;
  }
}

void Rope(float* head, int n_rot, int pos, float base, RopeStyle style) {
  std::vector<float> cs(static_cast<size_t>(n_rot / 2) * 2);
  RopeCosSin(n_rot, pos, base, cs.data());
  RopeApply(head, n_rot, cs.data(), style);
}

}  // namespace cllm::engine::ops
