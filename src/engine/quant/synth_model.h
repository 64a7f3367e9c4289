// synth_model.h — deterministic random-weight models with real shapes.
//
// Benchmarks need Qwen3-0.6B/1.7B-shaped files (speed depends on shapes and
// types, not on values) without shipping real weights. SynthesizeModel writes
// a qwen3 GGUF with the preset's exact hyperparameters, the tokenizer
// metadata of a vocabulary GGUF (so prompts tokenize like the real model) and
// weights drawn from N(0, 0.02²) (norm weights 1), quantized with the same
// per-tensor rules as `cllm model quantize`. Every tensor is generated and
// written row by row: memory stays at one row whatever the model size.
// The same options produce a byte-identical file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "engine/gguf/gguf.h"
#include "engine/quant/model_quantize.h"
#include "engine/quant/quant_plan.h"

namespace cllm::engine {

struct SynthPreset {
  std::string name;
  int n_layer = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ctx = 0;
  float rope_base = 1e6f;
  float rms_eps = 1e-6f;
};

// FindSynthPreset knows "tiny" (2 layers, hidden 256, for tests),
// "qwen3-0.6b" and "qwen3-1.7b" (the released models' shapes).
std::optional<SynthPreset> FindSynthPreset(std::string_view name);

struct SynthOptions {
  SynthPreset preset;
  QuantScheme scheme = QuantScheme::kQ8_0;
  uint64_t seed = 0;
  float weight_std = 0.02f;
  int n_threads = 0;  // quantization threads (0: all cores); the file does not depend on it
};

// SynthesizeModel writes the model to `out_path` (atomically). `vocab` must
// carry tokenizer.ggml.* metadata; kBadInput otherwise. Returns the plan.
QuantResult<std::vector<TensorPlanEntry>> SynthesizeModel(const SynthOptions& options, const GgufFile& vocab,
                                                          const std::filesystem::path& out_path,
                                                          const QuantProgress& progress = nullptr);

}  // namespace cllm::engine
