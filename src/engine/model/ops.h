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
// RopeScaling is what long-context models change in the rotation, as
// llama.cpp's ggml_rope_ext applies it (no YaRN ramp):
//   theta_i = pos · base^(−2i / n_rot) · freq_scale / freq_factors[i]
//   cos, sin both multiplied by mscale.
// Llama 3.1+ (rope_freqs) and Phi-3 LongRoPE (rope_factors_short/long) give
// freq_factors; Phi-3 also gives mscale (rope.scaling.attn_factor), which
// scales q·k by mscale².
struct RopeScaling {
  const float* freq_factors = nullptr;  // [n_rot / 2], or null for all 1
  float freq_scale = 1.0f;
  float mscale = 1.0f;
};
void RopeCosSin(int n_rot, int pos, float base, const RopeScaling& scaling, float* cs);
void RopeApply(float* head, int n_rot, const float* cs, RopeStyle style);
// Softmax and SwiGLU are row kernels (kernels.h: SoftmaxRow, SwiGluRow).

}  // namespace cllm::engine::ops
