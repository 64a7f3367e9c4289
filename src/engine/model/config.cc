#include "engine/model/config.h"

#include <set>

#include "engine/kernels/kernels.h"

namespace cllm::engine {

const char* ModelErrcName(ModelErrc code) {
  switch (code) {
    case ModelErrc::kBadFile: return "bad_file";
    case ModelErrc::kUnsupportedArch: return "unsupported_arch";
    case ModelErrc::kBadHparams: return "bad_hparams";
    case ModelErrc::kMissingTensor: return "missing_tensor";
    case ModelErrc::kBadTensor: return "bad_tensor";
    case ModelErrc::kTokenizer: return "tokenizer";
    case ModelErrc::kContextFull: return "context_full";
    case ModelErrc::kBadBatch: return "bad_batch";
    case ModelErrc::kOutOfMemory: return "out_of_memory";
  }
  return "unknown";
}

namespace config_internal {

ModelResult<int> Int(const GgufFile& f, const std::string& key) {
  auto v = f.GetUint(key);
  if (!v.ok()) return MakeError(ModelErrc::kBadHparams, v.detail());
  if (*v == 0 || *v > (1u << 24)) {
    return MakeError(ModelErrc::kBadHparams, key + " = " + std::to_string(*v) + " is out of range");
  }
  return static_cast<int>(*v);
}

int IntOr(const GgufFile& f, const std::string& key, int fallback) {
  auto v = Int(f, key);
  return v.ok() ? *v : fallback;
}

float FloatOr(const GgufFile& f, const std::string& key, float fallback) {
  auto v = f.GetFloat(key);
  return v.ok() ? static_cast<float>(*v) : fallback;
}

// Common reads the hyperparameters every llama-family model shares.
ModelResult<ModelConfig> Common(const GgufFile& f, const std::string& arch) {
  ModelConfig c;
  c.arch = arch;
  const std::string p = arch + ".";
  CLLM_ASSIGN_OR_RETURN(c.n_embd, Int(f, p + "embedding_length"));
  CLLM_ASSIGN_OR_RETURN(c.n_layer, Int(f, p + "block_count"));
  CLLM_ASSIGN_OR_RETURN(c.n_ff, Int(f, p + "feed_forward_length"));
  CLLM_ASSIGN_OR_RETURN(c.n_head, Int(f, p + "attention.head_count"));
  c.n_head_kv = IntOr(f, p + "attention.head_count_kv", c.n_head);
  c.head_dim = IntOr(f, p + "attention.key_length", c.n_embd / c.n_head);
  c.n_rot = IntOr(f, p + "rope.dimension_count", c.head_dim);
  c.n_ctx_train = IntOr(f, p + "context_length", 2048);
  c.rms_eps = FloatOr(f, p + "attention.layer_norm_rms_epsilon", 1e-5f);
  c.rope_base = FloatOr(f, p + "rope.freq_base", 10000.0f);
  auto tokens = f.GetArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return MakeError(ModelErrc::kBadHparams, "no tokenizer.ggml.tokens");
  c.n_vocab = static_cast<int>((*tokens)->size());
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0) {
    return MakeError(ModelErrc::kBadHparams, "head_count " + std::to_string(c.n_head) +
                                                 " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
  }
  if (c.head_dim % 2 != 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0) {
    return MakeError(ModelErrc::kBadHparams, "head dimension / rope dimensions are inconsistent");
  }
  if (IntOr(f, p + "attention.value_length", c.head_dim) != c.head_dim) {
    return MakeError(ModelErrc::kBadHparams, "value_length different from key_length is not supported");
  }
  c.tied_output = f.FindTensor("output.weight") == nullptr;
  CLLM_RETURN_IF_ERROR(RopeScalingKeys(f, p, c));
  // Keys of features this graph does not implement: a file that sets them
  // to anything but their neutral value expects a different computation, so
  // loading it anyway would give wrong logits without a word.
  struct Unsupported {
    const char* key;
    double neutral;
  };
  for (const Unsupported& u : {Unsupported{"attention.scale", 0}, Unsupported{"logit_scale", 1},
                               Unsupported{"attn_logit_softcapping", 0}, Unsupported{"final_logit_softcapping", 0},
                               Unsupported{"expert_count", 0}, Unsupported{"embedding_scale", 1},
                               Unsupported{"residual_scale", 1}, Unsupported{"attention.clamp_kqv", 0}}) {
    if (f.Find(p + u.key) == nullptr) continue;
    auto fv = f.GetFloat(p + u.key);
    auto uv = f.GetUint(p + u.key);
    auto iv = f.GetInt(p + u.key);
    const bool neutral = (fv.ok() && *fv == u.neutral) || (uv.ok() && static_cast<double>(*uv) == u.neutral) ||
                         (iv.ok() && static_cast<double>(*iv) == u.neutral);
    if (!neutral) return MakeError(ModelErrc::kBadHparams, p + u.key + " is set but not supported by this engine");
  }
  return c;
}

// RopeScalingKeys reads rope.scaling.*: only what the graph implements is
// accepted (no scaling, linear scaling, Phi-3's attn_factor and original
// context); YaRN and any type we do not know are refused by name.
ModelResult<Ok> RopeScalingKeys(const GgufFile& f, const std::string& p, ModelConfig& c) {
  std::string type = "linear";  // llama.cpp's default when the key is absent
  if (f.Find(p + "rope.scaling.type") != nullptr) {
    auto t = f.GetString(p + "rope.scaling.type");
    if (!t.ok()) return MakeError(ModelErrc::kBadHparams, p + "rope.scaling.type is not a string");
    type = *t;
    if (type != "none" && type != "linear") {
      return MakeError(ModelErrc::kBadHparams, p + "rope.scaling.type '" + type + "' is not supported (none, linear)");
    }
  }
  float factor = FloatOr(f, p + "rope.scaling.factor", 0.0f);
  if (factor == 0.0f) factor = FloatOr(f, p + "rope.scale_linear", 0.0f);
  if (!(factor == 0.0f || (factor >= 1e-3f && factor <= 1e6f))) {
    return MakeError(ModelErrc::kBadHparams, p + "rope.scaling.factor is out of range");
  }
  if (factor != 0.0f && factor != 1.0f) {
    if (type == "none") return MakeError(ModelErrc::kBadHparams, p + "rope.scaling.factor set with scaling type none");
    c.rope_freq_scale = 1.0f / factor;
  }
  // attn_factor is LongRoPE's (phi3); on other architectures we do not
  // know that llama.cpp applies it, so it is refused there.
  c.rope_attn_factor = FloatOr(f, p + "rope.scaling.attn_factor", 1.0f);
  if (c.arch != "phi3" && c.rope_attn_factor != 1.0f) {
    return MakeError(ModelErrc::kBadHparams, p + "rope.scaling.attn_factor is not supported for " + c.arch);
  }
  if (!(c.rope_attn_factor > 0.0f && c.rope_attn_factor <= 100.0f)) {
    return MakeError(ModelErrc::kBadHparams, p + "rope.scaling.attn_factor is out of range");
  }
  c.n_ctx_orig = IntOr(f, p + "rope.scaling.original_context_length", c.n_ctx_train);
  return OkStatus();
}

}  // namespace config_internal

ModelResult<ModelConfig> ConfigFromGguf(const GgufFile& f) {
  auto arch = f.GetString("general.architecture");
  if (!arch.ok()) return MakeError(ModelErrc::kUnsupportedArch, arch.detail());
  if (*arch == "llama") return ConfigLlama(f);
  if (*arch == "qwen2") return ConfigQwen2(f);
  if (*arch == "qwen3") return ConfigQwen3(f);
  if (*arch == "phi3") return ConfigPhi3(f);
  return MakeError(ModelErrc::kUnsupportedArch, "architecture '" + *arch + "' (supported: llama, qwen2, qwen3, phi3)");
}

namespace {

// Binder looks tensors up and remembers which it bound, so that a tensor
// the architecture does not read fails the load instead of being ignored.
class Binder {
 public:
  explicit Binder(const GgufFile& f) : f_(f) {}

  ModelResult<WeightRef> Matrix(const std::string& name, int64_t cols, int64_t rows) {
    CLLM_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(name));
    if (t->ne.size() != 2 || t->ne[0] != cols || t->ne[1] != rows) {
      return MakeError(ModelErrc::kBadTensor, "tensor '" + name + "' has the wrong shape (expected [" +
                                                  std::to_string(cols) + ", " + std::to_string(rows) + "])");
    }
    if (!GetTypeTraits(t->type)->supported) {
      return MakeError(ModelErrc::kBadTensor, "tensor '" + name + "' has unsupported type " + GetTypeTraits(t->type)->name);
    }
    return WeightRef{t->type, cols, rows, t->data};
  }

  // Vector loads a small 1-D tensor (norm weights, biases) as fp32.
  ModelResult<std::vector<float>> Vector(const std::string& name, int64_t n) {
    CLLM_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(name));
    if (t->ne.size() != 1 || t->ne[0] != n || !GetTypeTraits(t->type)->supported) {
      return MakeError(ModelErrc::kBadTensor, "tensor '" + name + "' must be a vector of " + std::to_string(n));
    }
    std::vector<float> out(static_cast<size_t>(n));
    DequantizeRow(t->type, t->data, out.data(), n);
    return out;
  }

  // OptionalVector is Vector, or empty when the file has no such tensor.
  ModelResult<std::vector<float>> OptionalVector(const std::string& name, int64_t n) {
    if (f_.FindTensor(name) == nullptr) return std::vector<float>{};
    return Vector(name, n);
  }

  // Unused names the first tensor of the file that nothing bound.
  ModelResult<Ok> CheckAllUsed(const std::string& arch) const {
    for (const GgufTensorInfo& t : f_.tensors()) {
      if (used_.count(t.name) == 0) {
        return MakeError(ModelErrc::kBadTensor, "tensor '" + t.name + "' is not used by architecture '" + arch +
                                                    "' (refusing a file whose weights would be partly ignored)");
      }
    }
    return OkStatus();
  }

 private:
  ModelResult<const GgufTensorInfo*> Find(const std::string& name) {
    const GgufTensorInfo* t = f_.FindTensor(name);
    if (t == nullptr) return MakeError(ModelErrc::kMissingTensor, "missing tensor '" + name + "'");
    used_.insert(name);
    return t;
  }

  const GgufFile& f_;
  std::set<std::string, std::less<>> used_;
};

// Rows is rows [first, first + n) of a matrix: the parts of a fused one
// (phi3's attn_qkv, ffn_up), used in place like any other matrix.
WeightRef Rows(const WeightRef& w, int64_t first, int64_t n) {
  WeightRef r = w;
  r.n_rows = n;
  r.data = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(first) * RowSizeBytes(w.type, w.n_cols);
  return r;
}

}  // namespace

ModelResult<ModelWeights> BindWeights(const GgufFile& f, const ModelConfig& c) {
  Binder b(f);
  ModelWeights w;
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim, kv_dim = int64_t{c.n_head_kv} * c.head_dim;
  CLLM_ASSIGN_OR_RETURN(w.token_embd, b.Matrix("token_embd.weight", c.n_embd, c.n_vocab));
  CLLM_ASSIGN_OR_RETURN(w.output_norm, b.Vector("output_norm.weight", c.n_embd));
  if (c.tied_output) {
    w.output = w.token_embd;
  } else {
    CLLM_ASSIGN_OR_RETURN(w.output, b.Matrix("output.weight", c.n_embd, c.n_vocab));
  }
  // RoPE frequency divisors: llama.cpp reads rope_freqs for llama and the
  // LongRoPE pair for phi3; no other architecture has them.
  if (c.arch == "llama") {
    CLLM_ASSIGN_OR_RETURN(w.rope_factors, b.OptionalVector("rope_freqs.weight", c.n_rot / 2));
  } else if (c.arch == "phi3") {
    CLLM_ASSIGN_OR_RETURN(w.rope_factors, b.OptionalVector("rope_factors_short.weight", c.n_rot / 2));
    CLLM_ASSIGN_OR_RETURN(w.rope_factors_long, b.OptionalVector("rope_factors_long.weight", c.n_rot / 2));
  }
  for (const auto* factors : {&w.rope_factors, &w.rope_factors_long}) {
    for (float v : *factors) {
      if (!(v > 0.0f && v < 1e6f)) return MakeError(ModelErrc::kBadTensor, "RoPE frequency factor out of range");
    }
  }
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    CLLM_ASSIGN_OR_RETURN(l.attn_norm, b.Vector(p + "attn_norm.weight", c.n_embd));
    if (c.fused_qkv) {
      CLLM_ASSIGN_OR_RETURN(WeightRef qkv, b.Matrix(p + "attn_qkv.weight", c.n_embd, q_dim + 2 * kv_dim));
      l.wq = Rows(qkv, 0, q_dim);
      l.wk = Rows(qkv, q_dim, kv_dim);
      l.wv = Rows(qkv, q_dim + kv_dim, kv_dim);
    } else {
      CLLM_ASSIGN_OR_RETURN(l.wq, b.Matrix(p + "attn_q.weight", c.n_embd, q_dim));
      CLLM_ASSIGN_OR_RETURN(l.wk, b.Matrix(p + "attn_k.weight", c.n_embd, kv_dim));
      CLLM_ASSIGN_OR_RETURN(l.wv, b.Matrix(p + "attn_v.weight", c.n_embd, kv_dim));
    }
    CLLM_ASSIGN_OR_RETURN(l.wo, b.Matrix(p + "attn_output.weight", q_dim, c.n_embd));
    if (c.qkv_bias) {
      CLLM_ASSIGN_OR_RETURN(l.bq, b.Vector(p + "attn_q.bias", q_dim));
      CLLM_ASSIGN_OR_RETURN(l.bk, b.Vector(p + "attn_k.bias", kv_dim));
      CLLM_ASSIGN_OR_RETURN(l.bv, b.Vector(p + "attn_v.bias", kv_dim));
    }
    if (c.qk_norm) {
      CLLM_ASSIGN_OR_RETURN(l.q_norm, b.Vector(p + "attn_q_norm.weight", c.head_dim));
      CLLM_ASSIGN_OR_RETURN(l.k_norm, b.Vector(p + "attn_k_norm.weight", c.head_dim));
    }
    CLLM_ASSIGN_OR_RETURN(l.ffn_norm, b.Vector(p + "ffn_norm.weight", c.n_embd));
    if (c.fused_gate_up) {
      // ggml_swiglu on the fused output: silu(first half) · second half.
      CLLM_ASSIGN_OR_RETURN(WeightRef gate_up, b.Matrix(p + "ffn_up.weight", c.n_embd, 2 * int64_t{c.n_ff}));
      l.w_gate = Rows(gate_up, 0, c.n_ff);
      l.w_up = Rows(gate_up, c.n_ff, c.n_ff);
    } else {
      CLLM_ASSIGN_OR_RETURN(l.w_gate, b.Matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff));
      CLLM_ASSIGN_OR_RETURN(l.w_up, b.Matrix(p + "ffn_up.weight", c.n_embd, c.n_ff));
    }
    CLLM_ASSIGN_OR_RETURN(l.w_down, b.Matrix(p + "ffn_down.weight", c.n_ff, c.n_embd));
    w.layers.push_back(std::move(l));
  }
  CLLM_RETURN_IF_ERROR(b.CheckAllUsed(c.arch));
  return w;
}

}  // namespace cllm::engine
