// embeddings_export.h — the model owner's side of issue 16 item 1: the part of
// a model a split-inference client may hold, as its own GGUF file, which
// `cllm model seal --part embeddings` then seals under its own key.
//
// The file holds ONLY
//   tensors   token_embd.weight          in the model's own type and bytes
//             split.neighbours           optional: I32, ne0 = K, ne1 = n_vocab,
//                                        row t = ComputeNeighbours (neighbours.h)
//   metadata  general.architecture, general.name (when present),
//             <arch>.embedding_length, and every tokenizer.* key
// and nothing else of the model: no other weight, no other hyper-parameter.
// This library links the engine (GGUF and dequantization); a client never
// links it — it reads the file it produces.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "base/result.h"
#include "client/split/neighbours.h"
#include "engine/gguf/gguf.h"
#include "engine/gguf/gguf_writer.h"

namespace cllm::split {

inline constexpr char kTokenEmbdTensor[] = "token_embd.weight";
inline constexpr char kNeighboursTensor[] = "split.neighbours";

struct EmbeddingsExportOptions {
  uint32_t neighbours = 0;  // K; 0 writes no split.neighbours tensor
  unsigned threads = 2;     // for the neighbour lists
  NeighbourProgress progress;
};

// DequantizedEmbeddings returns token_embd.weight as float32, row-major
// [n_vocab × dim], each row expanded exactly as the engine's embed step does
// (engine::DequantizeRow), with the shape read from the tensor.
struct FloatRows {
  uint32_t n_vocab = 0;
  uint32_t dim = 0;
  std::vector<float> rows;
};
Result<FloatRows> DequantizedEmbeddings(const engine::GgufFile& model);

// BuildEmbeddingsGguf assembles the file described above from `model`.
// Errors: kNotFound (no token_embd.weight, no general.architecture or no
// <arch>.embedding_length), kParse (a shape that does not match it),
// kInvalidArgument (K, or a table the neighbours cannot be computed on: a
// zero or non-finite row).
Result<engine::GgufWriter> BuildEmbeddingsGguf(const engine::GgufFile& model, const EmbeddingsExportOptions& options);

// WriteEmbeddingsGguf is BuildEmbeddingsGguf written to `out` (atomically).
Status<> WriteEmbeddingsGguf(const engine::GgufFile& model, const std::filesystem::path& out,
                             const EmbeddingsExportOptions& options);

}  // namespace cllm::split
