// embeddings_file.h — what a split-inference client loads: the model's token
// embeddings and its tokenizer, from a GGUF file, without the engine.
//
// Two kinds of file are accepted:
//  - a whole model (the client reads token_embd.weight and the tokenizer.*
//    keys and ignores the rest: handy for development, but it hands the
//    client every weight);
//  - an "embeddings part" (`cllm model seal --part embeddings`): only
//    token_embd.weight, the general.* and tokenizer.* keys, and optionally
//    `split.neighbours`, precomputed RNM candidate lists (I32, ne = [k, n_vocab]:
//    n_vocab rows of k ids, most similar first, row i starting with i).
//
// Rows are dequantized with the engine's own DequantizeRow (library
// cllm_gguf, which the engine links too), so a row here is bit for bit what
// engine::Model::TokenEmbedding gives and ε = ∞ reproduces the plain path.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "client/split/embedding_table.h"
#include "engine/gguf/gguf.h"
#include "engine/tokenizer/tokenizer.h"

namespace cllm::split {

// The tensor names read from the file.
inline constexpr char kTokenEmbdTensor[] = "token_embd.weight";
inline constexpr char kNeighboursTensor[] = "split.neighbours";

// SplitModel is everything the client side of split inference needs.
struct SplitModel {
  EmbeddingTable table;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::string name;  // general.name, "" when absent (to compare with what the server attests)
  std::string arch;  // general.architecture, "" when absent
};

// LoadEmbeddings maps `path` and loads it. Errors (all kInvalidArgument
// unless the table's own checks fail): not a GGUF file, no token_embd.weight
// or one that is not a 2-D matrix of a type the engine computes with, no
// usable tokenizer, a tokenizer whose vocabulary size is not the matrix's row
// count, a malformed split.neighbours; EmbeddingTable::Create's errors
// (kNonFinite, kZeroVector) for the rows themselves.
SplitResult<SplitModel> LoadEmbeddings(const std::filesystem::path& path);

// LoadEmbeddingsFromMemory parses bytes the caller holds (the hook for
// sealed embeddings: the key-release path decrypts into memory, never to
// disk, and hands the plaintext over as a ByteSource).
SplitResult<SplitModel> LoadEmbeddingsFromMemory(std::shared_ptr<const engine::ByteSource> bytes);

// LoadEmbeddingsFromGguf reads an already parsed file. The returned model
// copies what it needs; `file` may go away afterwards.
SplitResult<SplitModel> LoadEmbeddingsFromGguf(const engine::GgufFile& file);

}  // namespace cllm::split
