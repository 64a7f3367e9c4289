// qwen3: no q/k/v biases; instead each query and key head is RMS-normalised
// (attn_q_norm / attn_k_norm) before NEOX-style rotary embeddings. Head size
// comes from attention.key_length (128 for the released models, not
// n_embd / n_head). Small models tie the output projection to token_embd.
#include "engine/model/config.h"

namespace cllm::engine {

ModelResult<ModelConfig> ConfigQwen3(const GgufFile& f) {
  CLLM_ASSIGN_OR_RETURN(ModelConfig c, config_internal::Common(f, "qwen3"));
  c.rope = RopeStyle::kNeox;
  c.qkv_bias = false;
  c.qk_norm = true;
  return c;
}

}  // namespace cllm::engine
