// ops.h — the element-wise and per-head operations of a transformer layer.
// They know nothing of models; shapes are passed explicitly.
#pragma once

#include <cstdint>

#include "engine/model/config.h"

namespace cllm::engine::ops {

// RmsNorm: out[i] = x[i] / sqrt(mean(x²) + eps) · w[i], over n elements.
void RmsNorm(const float* x, const float* w, int n, float eps, float* out);
// Rope rotates the first n_rot dims of one head (head_dim floats) in place
// for position `pos`: theta_i = pos · base^(−2i / n_rot).
void Rope(float* head, int n_rot, int pos, float base, RopeStyle style);
// RopeCosSin computes Rope's factors for `pos` once (every head and layer of
// a token shares them): cs [n_rot / 2][cos, sin]. RopeApply rotates with
// them; RopeCosSin + RopeApply is bit-identical to Rope.
void RopeCosSin(int n_rot, int pos, float base, float* cs);
void RopeApply(float* head, int n_rot, const float* cs, RopeStyle style);
// Softmax and SwiGLU are row kernels (kernels.h: SoftmaxRow, SwiGluRow).

}  // namespace cllm::engine::ops
