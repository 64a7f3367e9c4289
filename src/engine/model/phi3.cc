// phi3 (Phi-3, Phi-3.5): the llama block with q/k/v in one attn_qkv matrix
// and gate and up in one ffn_up matrix (BindWeights splits them by rows),
// NEOX-style rotary embeddings with LongRoPE: per-dimension frequency
// divisors rope_factors_short, or rope_factors_long when the context is
// longer than rope.scaling.original_context_length, and cos/sin scaled by
// rope.scaling.attn_factor. llama.cpp ignores phi3's sliding window
// (disabled there for this architecture), and so do we.
#include "engine/model/config.h"

namespace cllm::engine {

ModelResult<ModelConfig> ConfigPhi3(const GgufFile& f) {
  CLLM_ASSIGN_OR_RETURN(ModelConfig c, config_internal::Common(f, "phi3"));
  c.rope = RopeStyle::kNeox;
  c.qkv_bias = false;
  c.qk_norm = false;
  c.fused_qkv = true;
  c.fused_gate_up = true;
  return c;
}

}  // namespace cllm::engine
