#include "engine/model/config.h"

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
  return c;
}

}  // namespace config_internal

ModelResult<ModelConfig> ConfigFromGguf(const GgufFile& f) {
  auto arch = f.GetString("general.architecture");
  if (!arch.ok()) return MakeError(ModelErrc::kUnsupportedArch, arch.detail());
  if (*arch == "llama") return ConfigLlama(f);
  if (*arch == "qwen2") return ConfigQwen2(f);
  if (*arch == "qwen3") return ConfigQwen3(f);
  return MakeError(ModelErrc::kUnsupportedArch, "architecture '" + *arch + "' (supported: llama, qwen2, qwen3)");
}

namespace {

ModelResult<WeightRef> Matrix(const GgufFile& f, const std::string& name, int64_t cols, int64_t rows) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) return MakeError(ModelErrc::kMissingTensor, "missing tensor '" + name + "'");
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
ModelResult<std::vector<float>> Vector(const GgufFile& f, const std::string& name, int64_t n) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) return MakeError(ModelErrc::kMissingTensor, "missing tensor '" + name + "'");
  if (t->ne.size() != 1 || t->ne[0] != n || !GetTypeTraits(t->type)->supported) {
    return MakeError(ModelErrc::kBadTensor, "tensor '" + name + "' must be a vector of " + std::to_string(n));
  }
  std::vector<float> out(static_cast<size_t>(n));
  DequantizeRow(t->type, t->data, out.data(), n);
  return out;
}

}  // namespace

ModelResult<ModelWeights> BindWeights(const GgufFile& f, const ModelConfig& c) {
  ModelWeights w;
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim, kv_dim = int64_t{c.n_head_kv} * c.head_dim;
  CLLM_ASSIGN_OR_RETURN(w.token_embd, Matrix(f, "token_embd.weight", c.n_embd, c.n_vocab));
  CLLM_ASSIGN_OR_RETURN(w.output_norm, Vector(f, "output_norm.weight", c.n_embd));
  if (c.tied_output) {
    w.output = w.token_embd;
  } else {
    CLLM_ASSIGN_OR_RETURN(w.output, Matrix(f, "output.weight", c.n_embd, c.n_vocab));
  }
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    CLLM_ASSIGN_OR_RETURN(l.attn_norm, Vector(f, p + "attn_norm.weight", c.n_embd));
    CLLM_ASSIGN_OR_RETURN(l.wq, Matrix(f, p + "attn_q.weight", c.n_embd, q_dim));
    CLLM_ASSIGN_OR_RETURN(l.wk, Matrix(f, p + "attn_k.weight", c.n_embd, kv_dim));
    CLLM_ASSIGN_OR_RETURN(l.wv, Matrix(f, p + "attn_v.weight", c.n_embd, kv_dim));
    CLLM_ASSIGN_OR_RETURN(l.wo, Matrix(f, p + "attn_output.weight", q_dim, c.n_embd));
    if (c.qkv_bias) {
      CLLM_ASSIGN_OR_RETURN(l.bq, Vector(f, p + "attn_q.bias", q_dim));
      CLLM_ASSIGN_OR_RETURN(l.bk, Vector(f, p + "attn_k.bias", kv_dim));
      CLLM_ASSIGN_OR_RETURN(l.bv, Vector(f, p + "attn_v.bias", kv_dim));
    }
    if (c.qk_norm) {
      CLLM_ASSIGN_OR_RETURN(l.q_norm, Vector(f, p + "attn_q_norm.weight", c.head_dim));
      CLLM_ASSIGN_OR_RETURN(l.k_norm, Vector(f, p + "attn_k_norm.weight", c.head_dim));
    }
    CLLM_ASSIGN_OR_RETURN(l.ffn_norm, Vector(f, p + "ffn_norm.weight", c.n_embd));
    CLLM_ASSIGN_OR_RETURN(l.w_gate, Matrix(f, p + "ffn_gate.weight", c.n_embd, c.n_ff));
    CLLM_ASSIGN_OR_RETURN(l.w_up, Matrix(f, p + "ffn_up.weight", c.n_embd, c.n_ff));
    CLLM_ASSIGN_OR_RETURN(l.w_down, Matrix(f, p + "ffn_down.weight", c.n_ff, c.n_embd));
    w.layers.push_back(std::move(l));
  }
  return w;
}

}  // namespace cllm::engine
