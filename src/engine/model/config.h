// config.h — model hyperparameters and weight bindings.
//
// One factory per architecture (llama.cc, qwen2.cc, qwen3.cc, phi3.cc) reads the GGUF
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
  kUnsupportedArch,      // general.architecture not one of llama, qwen2, qwen3, phi3
  kBadHparams,           // missing, inconsistent or unsupported hyperparameters
                         // (e.g. a RoPE scaling type the graph does not implement)
  kMissingTensor,
  kBadTensor,            // wrong shape, an unsupported type for its role, or a
                         // tensor the architecture does not use (ignoring it
                         // would silently change results)
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
  kNeox,    // rotate (x[i], x[i + n_rot/2]) — qwen2, qwen3, phi3
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
  float rope_freq_scale = 1.0f;   // 1 / rope.scaling.factor (linear scaling)
  float rope_attn_factor = 1.0f;  // rope.scaling.attn_factor: cos/sin scale (phi3)
  int n_ctx_orig = 0;             // rope.scaling.original_context_length (phi3:
                                  // contexts above it use rope_factors_long)
  RopeStyle rope = RopeStyle::kNormal;
  bool qkv_bias = false;     // qwen2
  bool qk_norm = false;      // qwen3: RMSNorm of each q/k head before RoPE
  bool tied_output = false;  // output projection is token_embd
  bool fused_qkv = false;    // phi3: one attn_qkv matrix, rows q | k | v
  bool fused_gate_up = false;  // phi3: ffn_up holds gate rows then up rows
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
  // RoPE frequency divisors, [n_rot / 2] or empty: llama's rope_freqs
  // (Llama 3.1+) or phi3's rope_factors_short, and phi3's rope_factors_long
  // for contexts longer than n_ctx_orig.
  std::vector<float> rope_factors;
  std::vector<float> rope_factors_long;
  // Matrices repacked at load time (PackWeights) live here; their WeightRefs
  // point into these buffers instead of the file.
  std::vector<std::shared_ptr<void>> packed;
  size_t packed_bytes = 0;  // bytes of matrices in a load-time layout (arena or in place)
  // Matrices repacked in place in the source's buffer: where, and from what.
  struct InPlace {
    size_t offset;  // in the source's bytes
    GgmlType packed_type;  // the file's type is FileTypeOf(packed_type)
    int64_t n_rows, n_cols;
  };
  std::vector<InPlace> in_place;
  // RopeFactorsFor picks the divisors for a context of n_ctx positions (the
  // KV cache's length bound, as llama.cpp picks by n_ctx): null if none.
  const float* RopeFactorsFor(int n_ctx, int n_ctx_orig) const {
    if (!rope_factors_long.empty() && n_ctx > n_ctx_orig) return rope_factors_long.data();
    return rope_factors.empty() ? nullptr : rope_factors.data();
  }
};

// Architecture factories (one file each).
ModelResult<ModelConfig> ConfigLlama(const GgufFile& f);
ModelResult<ModelConfig> ConfigQwen2(const GgufFile& f);
ModelResult<ModelConfig> ConfigQwen3(const GgufFile& f);
ModelResult<ModelConfig> ConfigPhi3(const GgufFile& f);

// PackWeights gives each weight matrix the layout the active kernels are
// fastest with (PackedLayoutFor, kernels.h), in buffers the weights own, and
// lets the file's pages of every repacked matrix go (ByteSource::Discard),
// so resident memory stays about the file's size. A source that hands out
// its buffer as writable (ByteSource::WritableBytes: cllm-server's locked,
// already hashed copy) is repacked in place instead: every layout is the
// size of the rows it replaces, group of 8 rows by group. Other sources keep
// the file's layout. CLLM_REPACK=0 turns it off (A/B benchmarks). Returns
// the bytes repacked.
size_t PackWeights(ModelWeights& w, const GgufFile& f);
// FileImage is the source's bytes with every matrix repacked in place
// unpacked again: exactly the file the weights were loaded from (what the
// attested digest names), rebuilt from the bytes the engine computes with.
// (A matrix repacked into an arena is not in it: its source is a file
// mapping, which is not what a server attests.)
std::vector<uint8_t> FileImage(const ModelWeights& w, const GgufFile& f);

// ConfigFromGguf dispatches on general.architecture.
ModelResult<ModelConfig> ConfigFromGguf(const GgufFile& f);
// BindWeights finds and shape-checks every tensor the config needs, and
// fails naming the first tensor of the file it did not bind.
ModelResult<ModelWeights> BindWeights(const GgufFile& f, const ModelConfig& c);

// Helpers shared by the factories.
namespace config_internal {
ModelResult<int> Int(const GgufFile& f, const std::string& key);
int IntOr(const GgufFile& f, const std::string& key, int fallback);
float FloatOr(const GgufFile& f, const std::string& key, float fallback);
ModelResult<ModelConfig> Common(const GgufFile& f, const std::string& arch);
ModelResult<Ok> RopeScalingKeys(const GgufFile& f, const std::string& prefix, ModelConfig& c);
}  // namespace config_internal

}  // namespace cllm::engine
