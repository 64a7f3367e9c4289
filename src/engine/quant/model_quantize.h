// model_quantize.h — re-encode a GGUF model's weights under a QuantScheme.
//
// Reads an F32/F16/BF16 GGUF file, keeps every metadata entry (replacing
// general.file_type and general.quantization_version), picks each tensor's
// type with ChooseTensorType and streams the result row by row through
// GgufStreamWriter: memory use is one row, not one model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "engine/gguf/gguf.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/quant/quant_plan.h"

namespace cllm::engine {

enum class QuantErrc {
  kIo = 1,         // the output cannot be written
  kBadInput,       // the input is not a model we can quantize (already quantized, odd shapes)
};
const char* QuantErrcName(QuantErrc code);

template <typename T>
using QuantResult = Result<T, QuantErrc>;

struct TensorPlanEntry {
  std::string name;
  GgmlType from = GgmlType::kF32;
  GgmlType to = GgmlType::kF32;
  uint64_t n_bytes = 0;  // output bytes
};

// QuantProgress is called after each tensor: (index, count, entry).
using QuantProgress = std::function<void(size_t index, size_t count, const TensorPlanEntry& entry)>;

// PlanQuantization returns the output type of every tensor of `in`, in file
// order. kBadInput when a matrix is already quantized (requantizing loses
// precision twice; llama.cpp refuses it too) or its type cannot be read.
QuantResult<std::vector<TensorPlanEntry>> PlanQuantization(const GgufFile& in, QuantScheme scheme);

// QuantizeModel writes `in` re-encoded under `scheme` to `out_path`
// (atomically: a failed run leaves no file), quantizing rows on `n_threads`
// threads (0: all cores; the output does not depend on it). Returns the plan.
QuantResult<std::vector<TensorPlanEntry>> QuantizeModel(const GgufFile& in, const std::filesystem::path& out_path,
                                                        QuantScheme scheme, const QuantProgress& progress = nullptr,
                                                        int n_threads = 0);

// RowChunk is how many rows of `n_cols` are converted per batch (~4 MiB of fp32).
int64_t RowChunk(int64_t n_cols);

// CopyMetadataExcept adds every metadata entry of `in` to `out` except keys
// for which `skip` returns true (shared with `cllm model synth`).
void CopyMetadataExcept(const GgufFile& in, GgufWriter& out, const std::function<bool(const std::string&)>& skip);

}  // namespace cllm::engine
