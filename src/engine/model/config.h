// config.h — model hyperparameters and weight bindings.
//
// One factory per architecture (llama.cc, qwen2.cc, qwen3.cc) reads the GGUF
// metadata and sets every field explicitly; the shared transformer
// (transformer.cc) only reads this struct. Adding an architecture = one new
// factory plus, if it needs a new op, a flag here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "engine/ggml_type.h"
#include "engine/gguf/gguf.h"

namespace cllm::engine {

enum class ModelErrc {
  kBadFile = 1,          // the file is not a valid GGUF file (detail carries the GGUF error)
  kUnsupportedArch,      // general.architecture not one of llama, qwen2, qwen3
  kBadHparams,           // missing or inconsistent hyperparameters
  kMissingTensor,
  kBadTensor,            // wrong shape or an unsupported type for its role
  kTokenizer,            // the tokenizer could not be built
  kContextFull,          // a sequence would exceed its context length
  kBadBatch,             // invalid batch entry (token id, position, sequence)
  kOutOfMemory,          // a KV cache block could not be mapped
};
const char* ModelErrcName(ModelErrc code);

template <typename T>
using ModelResult = Result<T, ModelErrc>;

enum class RopeStyle {
  kNormal,  // rotate (x[2i], x[2i+1]) — llama
  kNeox,    // rotate (x[i], x[i + n_rot/2]) — qwen2, qwen3
};

struct ModelConfig {
  std::string arch;
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;      // per-head size of q/k/v
  int n_rot = 0;         // rotated dims per head
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  RopeStyle rope = RopeStyle::kNormal;
  bool qkv_bias = false;     // qwen2
  bool qk_norm = false;      // qwen3: RMSNorm of each q/k head before RoPE
  bool tied_output = false;  // output projection is token_embd
};

// A weight matrix in place in the mapped file: rows of `n_cols` elements.
struct WeightRef {
  GgmlType type = GgmlType::kF32;
  int64_t n_cols = 0;  // ne[0], the input dimension
  int64_t n_rows = 0;  // ne[1], the output dimension
  const void* data = nullptr;
};

struct LayerWeights {
  std::vector<float> attn_norm;            // [n_embd]
  WeightRef wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;           // qwen2 biases, else empty
  std::vector<float> q_norm, k_norm;       // qwen3, [head_dim]
  std::vector<float> ffn_norm;             // [n_embd]
  WeightRef w_gate, w_up, w_down;
};

struct ModelWeights {
  WeightRef token_embd;                    // [n_vocab rows × n_embd]
  std::vector<float> output_norm;          // [n_embd]
  WeightRef output;                        // [n_vocab rows × n_embd]
  std::vector<LayerWeights> layers;
};

// Architecture factories (one file each).
ModelResult<ModelConfig> ConfigLlama(const GgufFile& f);
ModelResult<ModelConfig> ConfigQwen2(const GgufFile& f);
ModelResult<ModelConfig> ConfigQwen3(const GgufFile& f);

// ConfigFromGguf dispatches on general.architecture.
ModelResult<ModelConfig> ConfigFromGguf(const GgufFile& f);
// BindWeights finds and shape-checks every tensor the config needs.
ModelResult<ModelWeights> BindWeights(const GgufFile& f, const ModelConfig& c);

// Helpers shared by the factories.
namespace config_internal {
ModelResult<int> Int(const GgufFile& f, const std::string& key);
int IntOr(const GgufFile& f, const std::string& key, int fallback);
float FloatOr(const GgufFile& f, const std::string& key, float fallback);
ModelResult<ModelConfig> Common(const GgufFile& f, const std::string& arch);
}  // namespace config_internal

}  // namespace cllm::engine
