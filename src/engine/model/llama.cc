// llama: the original architecture, also what llama2.c checkpoints convert to.
// RMSNorm, SwiGLU FFN, rotary embeddings on consecutive pairs (NORM style).
#include "engine/model/config.h"

namespace cllm::engine {

ModelResult<ModelConfig> ConfigLlama(const GgufFile& f) {
  CLLM_ASSIGN_OR_RETURN(ModelConfig c, config_internal::Common(f, "llama"));
  c.rope = RopeStyle::kNormal;
  c.qkv_bias = false;
  c.qk_norm = false;
  return c;
}

}  // namespace cllm::engine
