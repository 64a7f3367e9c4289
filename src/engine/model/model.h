// model.h — a loaded model and its batched forward pass.
//
// Forward takes a batch of (sequence, position, token or embedding) entries: a prompt's
// prefill is one batch, a decode step is one entry per sequence, and a step
// may mix both across sequences (continuous batching). Weight matmuls run
// over the whole batch through kernels.h; attention runs per entry against
// its own sequence's KV cache. Model code never sees SIMD or threads.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "engine/gguf/gguf.h"
#include "engine/model/config.h"
#include "engine/model/kv_cache.h"
#include "engine/tokenizer/tokenizer.h"

namespace cllm::engine {

struct BatchEntry {
  int seq = 0;           // sequence id (any int; the KV cache is per sequence)
  int pos = 0;           // position in the sequence
  TokenId token = 0;
  bool logits = false;   // whether to return logits for this entry
  // embedding, when set, is this entry's input instead of token's row of
  // token_embd: n_embd floats, read during Forward only (not owned; the
  // caller keeps them alive and has checked them — finite values), and
  // `token` is ignored. Split inference (docs/split-inference.md): a client
  // sends embedding rows, never ids. Null (every token entry) costs nothing.
  const float* embedding = nullptr;
};

class Model {
 public:
  // Load binds a parsed GGUF file: config, weights (used in place from the
  // file's bytes), tokenizer.
  static ModelResult<std::unique_ptr<Model>> Load(GgufFile file);
  static ModelResult<std::unique_ptr<Model>> Open(const std::filesystem::path& path);

  const ModelConfig& config() const { return config_; }
  // Bytes of weight matrices repacked at load into the kernels' layouts.
  size_t packed_bytes() const { return weights_.packed_bytes; }
  // FileImage: the model file rebuilt from the bytes the engine computes
  // with (matrices repacked in place unpacked again; pack_weights.cc).
  std::vector<uint8_t> FileImage() const { return engine::FileImage(weights_, file_); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& file() const { return file_; }

  // Forward runs `batch` and appends, for every entry with logits = true in
  // batch order, n_vocab logits to *out_logits. Entries of one sequence must
  // have consecutive positions continuing that sequence (a position below
  // its current length rewinds it). Errors: kBadBatch, kContextFull.
  // out_hidden, when set, also gets every entry's final hidden state after
  // the output norm (n_embd floats per entry, batch order): what embeddings
  // pool. Null (the decode path) costs nothing.
  ModelResult<Ok> Forward(const std::vector<BatchEntry>& batch, KvCache& cache, std::vector<float>* out_logits,
                          std::vector<float>* out_hidden = nullptr) const;

  // TokenEmbedding writes token `id`'s row of token_embd as float32 into
  // `out` (n_embd floats), dequantized exactly as Forward's embed step does:
  // a BatchEntry carrying these floats computes what one carrying `id` does.
  // Errors: kBadBatch (id out of range or `out` not n_embd floats).
  ModelResult<Ok> TokenEmbedding(TokenId id, std::span<float> out) const;

 private:
  Model(GgufFile file, ModelConfig config, ModelWeights weights, std::unique_ptr<Tokenizer> tok)
      : file_(std::move(file)), config_(std::move(config)), weights_(std::move(weights)), tokenizer_(std::move(tok)) {}
  void Attention(int layer, const std::vector<BatchEntry>& batch, const KvCache& cache, const float* q,
                 float* out) const;

  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace cllm::engine
