// embedding_table.h — the token-embedding matrix a split-inference client
// holds, and cosine nearest-neighbour search over it (the candidate sets of
// Report-Noisy-Max, rnm.h).
//
// The client keeps the model's token embeddings (GGUF `token_embd.weight`,
// dequantized to float32) and nothing else of the model: it looks up the rows
// of the prompt's (possibly replaced) tokens and sends those to the server.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "base/result.h"

namespace cllm::split {

enum class SplitErrc {
  kInvalidArgument = 1,  // an option out of its domain (ε, k, mask size)
  kShape,                // matrix size is not n_vocab × dim, or a vector of the wrong length
  kNonFinite,            // NaN or ±Inf in a matrix or vector
  kZeroVector,           // a row or query vector of norm 0 (cosine undefined)
  kOutOfRange,           // a token id ≥ n_vocab
};

const char* SplitErrcName(SplitErrc code);

template <typename T>
using SplitResult = Result<T, SplitErrc>;

// Neighbour is one entry of a nearest-neighbour list.
struct Neighbour {
  uint32_t id = 0;
  float cosine = 0;  // cos(query, row id) ∈ [−1, 1] up to float rounding
};

// EmbeddingTable holds the rows [n_vocab × dim] as given (they are what the
// server receives) and 1/‖row‖ per row: cosine is dot(a, b)·inv_a·inv_b, so the
// table is normalised once without a second float32 copy of the matrix (Qwen3's
// 151936 × 1024 rows are 622 MB already).
class EmbeddingTable {
 public:
  // Create takes ownership of `rows`, row-major [n_vocab × dim] float32 — the
  // layout a dequantized GGUF `token_embd.weight` (ne0 = dim, ne1 = n_vocab)
  // has in memory, so a loader can hand over its buffer unchanged.
  // Errors: kShape when rows.size() ≠ n_vocab·dim or either is 0 (overflow
  // checked), kNonFinite at the first NaN/Inf, kZeroVector at the first row of
  // norm 0 (no direction, so no cosine; a loader that meets such rows must
  // decide what they mean before building the table).
  static SplitResult<EmbeddingTable> Create(uint32_t n_vocab, uint32_t dim,
                                            std::vector<float> rows);

  uint32_t n_vocab() const { return n_vocab_; }
  uint32_t dim() const { return dim_; }

  // Row returns the embedding of token `id` (CLLM_CHECK id < n_vocab: callers
  // validate ids first, see Contains).
  std::span<const float> Row(uint32_t id) const;
  bool Contains(uint32_t id) const { return id < n_vocab_; }

  // Gather returns the rows of `ids` one after another, [ids.size() × dim]
  // row-major: the prompt embeddings a split client sends. Errors:
  // kOutOfRange at the first id ≥ n_vocab, kShape when the size overflows.
  SplitResult<std::vector<float>> Gather(std::span<const uint32_t> ids) const;

  // Cosine returns cos(e_a, e_b) (both ids checked by CLLM_CHECK).
  float Cosine(uint32_t a, uint32_t b) const;

  // Nearest returns the k tokens most similar to token `id` by cosine, most
  // similar first. The token itself is always first (with cosine 1): its true
  // cosine is 1 and rounding must not let a duplicate row push it out of its
  // own candidate set. Ties among the others go to the smaller id, so the
  // result is a deterministic function of the table and `id`.
  // Errors: kOutOfRange (id), kInvalidArgument (k = 0 or k > n_vocab).
  SplitResult<std::vector<Neighbour>> Nearest(uint32_t id, uint32_t k) const;

  // Nearest for an arbitrary vector of length dim (for example a received
  // embedding to decode): the k rows most similar to it, same order and ties.
  // Errors: kShape, kNonFinite, kZeroVector, kInvalidArgument (k).
  SplitResult<std::vector<Neighbour>> Nearest(std::span<const float> vector, uint32_t k) const;

  // SetNeighbours installs precomputed candidate lists (the model owner ships
  // them with the embeddings, GGUF tensor `split.neighbours`), so RNM need not
  // scan the table per token. `lists` holds n_vocab rows of `k` ids, row i
  // being token i's neighbours most similar first, starting with i itself (as
  // Nearest returns them). Validated: size = n_vocab·k, k ≥ 1, every id <
  // n_vocab, row i starts with i, no id twice in a row (so k ≤ n_vocab).
  // That the lists really are the nearest is not checked (a full scan per
  // token is what they save); they come with the table from its owner.
  // Errors: kShape (size), kInvalidArgument (k = 0), kOutOfRange (an id),
  // kInvalidArgument (a row not starting with its token, or a duplicate).
  SplitResult<Ok> SetNeighbours(uint32_t k, std::vector<uint32_t> lists);
  // neighbours_k is the installed lists' length, 0 without lists.
  uint32_t neighbours_k() const { return neighbours_k_; }

  // Candidates returns RNM's candidate set for token `id`: the first k
  // entries of the installed list (k ≤ neighbours_k), or Nearest(id, k)
  // without lists. The cosines are computed exactly as Nearest computes them,
  // so both paths give identical utilities for identical candidates.
  // Errors: kOutOfRange (id), kInvalidArgument (k = 0, k > n_vocab, or k >
  // neighbours_k when lists are installed).
  SplitResult<std::vector<Neighbour>> Candidates(uint32_t id, uint32_t k) const;

 private:
  EmbeddingTable(uint32_t n_vocab, uint32_t dim, std::vector<float> rows,
                 std::vector<float> inv_norm)
      : n_vocab_(n_vocab), dim_(dim), rows_(std::move(rows)), inv_norm_(std::move(inv_norm)) {}

  // ScanCosine is cos(unit query, row id) as TopK computes it.
  float ScanCosine(std::span<const float> unit, uint32_t id) const;
  // UnitRow returns row id scaled to norm 1 (TopK's query).
  std::vector<float> UnitRow(std::span<const float> row, float inv_norm) const;

  // TopK scans every row against `query` (scaled by query_inv_norm) and keeps the k best,
  // skipping `skip` (n_vocab_ = skip nothing).
  std::vector<Neighbour> TopK(std::span<const float> query, float query_inv_norm, uint32_t k,
                              uint32_t skip) const;

  uint32_t n_vocab_ = 0;
  uint32_t dim_ = 0;
  std::vector<float> rows_;      // [n_vocab × dim], as given
  std::vector<float> inv_norm_;  // [n_vocab], 1/‖row‖
  uint32_t neighbours_k_ = 0;
  std::vector<uint32_t> neighbours_;  // [n_vocab × neighbours_k_], SetNeighbours
};

// Dot is the float dot product used for every cosine (exposed for tests):
// eight partial sums, so the loop vectorises without -ffast-math.
float Dot(std::span<const float> a, std::span<const float> b);

}  // namespace cllm::split
