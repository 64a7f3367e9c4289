// neighbours.h — the nearest-neighbour list of every token, computed once by
// the model owner and shipped with the sealed embedding table
// (`cllm model seal --part embeddings --neighbours K`, embeddings_export.h),
// so a client does not scan the whole table for each perturbed token.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "client/split/embedding_table.h"

namespace cllm::split {

// NeighbourProgress is called with (tokens done, n_vocab), from the calling
// thread only.
using NeighbourProgress = std::function<void(uint64_t done, uint64_t total)>;

// ComputeNeighbours returns n_vocab × k token ids, row t = the ids of
// table.Nearest(t, k) in that order (t itself first, ties to the smaller
// id): the layout of the GGUF tensor "split.neighbours" (I32, ne0 = k,
// ne1 = n_vocab). `threads` (≥ 1) split the vocabulary into contiguous
// ranges; the result does not depend on it. Errors: kInvalidArgument when
// k = 0, k > n_vocab, or n_vocab·k overflows.
SplitResult<std::vector<int32_t>> ComputeNeighbours(const EmbeddingTable& table, uint32_t k, unsigned threads = 2,
                                                    const NeighbourProgress& progress = nullptr);

}  // namespace cllm::split
