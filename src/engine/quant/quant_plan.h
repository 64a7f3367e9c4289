// quant_plan.h — which ggml type each tensor gets under a quantization scheme.
//
// The rules are llama.cpp's (llama-quantize, no importance matrix) for the
// schemes we produce, so that our files have the same tensor types as
// llama.cpp's and benchmarks compare like with like:
//   * 1-D tensors (norms, biases) are copied unchanged.
//   * The output projection (`output.weight`, or `token_embd.weight` when the
//     embeddings are tied) gets Q6_K, except under Q8_0 (stays Q8_0) and F16.
//   * Q4_K_M: attn_v and ffn_down get Q6_K in the layers UseMoreBits picks
//     (about half), Q4_K elsewhere; every other matrix Q4_K.
//   * Rows that are not a multiple of 256 cannot hold K-quants: Q4_K falls
//     back to Q5_0, Q6_K to Q8_0 (llama.cpp's table); rows that are not a
//     multiple of 32 then fall back to F16. llama.cpp refuses Q8_0/Q4_0 for
//     such rows outright; we use F16 for those tensors too (documented).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ggml_type.h"

namespace cllm::engine {

enum class QuantScheme { kF16, kQ8_0, kQ4_0, kQ4_K, kQ6_K, kQ4_K_M };

// ParseQuantScheme accepts "f16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"
// (case-insensitive); nullopt otherwise.
std::optional<QuantScheme> ParseQuantScheme(std::string_view name);
const char* QuantSchemeName(QuantScheme s);
// QuantSchemeFileType is the `general.file_type` (llama_ftype) written for
// the scheme: F16 1, Q4_0 2, Q8_0 7, Q4_K 14 (llama.cpp's Q4_K_S label, the
// closest), Q4_K_M 15, Q6_K 18.
uint32_t QuantSchemeFileType(QuantScheme s);

// UseMoreBits is llama.cpp's layer pick for Q4_K_M's Q6_K layers: the first
// and last eighth of the layers and every third layer in between.
bool UseMoreBits(int layer, int n_layer);

// LayerIndex returns N for a tensor named "blk.N.…", else -1.
int LayerIndex(std::string_view tensor_name);

struct TensorPlanInput {
  std::string_view name;
  std::vector<int64_t> ne;  // dims, row length first
  int n_layer = 0;          // blocks in the model
  bool has_output = true;   // false: token_embd doubles as the output projection
};

// ChooseTensorType returns the type `t` gets under `scheme` (1-D tensors:
// nullopt, meaning "copy unchanged").
std::optional<GgmlType> ChooseTensorType(QuantScheme scheme, const TensorPlanInput& t);

}  // namespace cllm::engine
