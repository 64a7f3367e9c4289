// qwen2: llama layout with biases on the q/k/v projections and NEOX-style
// rotary embeddings (first half of each head rotated against the second).
#include "engine/model/config.h"

namespace cllm::engine {

ModelResult<ModelConfig> ConfigQwen2(const GgufFile& f) {
  CLLM_ASSIGN_OR_RETURN(ModelConfig c, config_internal::Common(f, "qwen2"));
  c.rope = RopeStyle::kNeox;
  c.qkv_bias = true;
  c.qk_norm = false;
  return c;
}

}  // namespace cllm::engine
