// kv_cache.h — keys and values of every sequence, in fixed-size blocks.
//
// Each sequence owns a block table; a block holds kBlockSize positions of
// every layer's K and V, head-major:
//   block: [n_layer][2 (K, V)][n_head_kv][kBlockSize][head_dim]   in F32 or F16
// so one head's rows of a block are one contiguous run (attention streams
// them; interleaved with the other heads they were 2 KB strides apart).
// Blocks come from a shared pool, so sequences of different lengths share
// memory without fragmentation; a released block is zeroed before reuse
// (one user's context never lingers for another).
//
// Blocks are reference-counted: the per-user prompt cache (serve/
// prefix_cache.h) holds full blocks of finished sequences, and a new
// sequence of the same user may start its table with them (Share). A
// shared block is read-only: a write into it (a rewind) first copies it
// (Unshare), so a sequence only ever writes into blocks it alone holds.
// A block is zeroed when its last holder lets go. Blocks are LockedBuffers:
// anonymous pages locked where the OS allows and excluded from core dumps,
// since they hold what users said (docs/security.md, "secrets off disk").
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "base/locked_buffer.h"
#include "engine/kernels/kernels.h"
#include "engine/model/config.h"

namespace cllm::engine {

enum class KvType { kF32, kF16 };

class KvCache {
 public:
  static constexpr int kBlockSize = 32;

  // `max_positions` bounds each sequence (the context length).
  KvCache(const ModelConfig& c, KvType type, int max_positions);

  KvType type() const { return type_; }
  int max_positions() const { return max_positions_; }
  // Length is the number of positions stored for `seq` (0 if unknown).
  int Length(int seq) const;
  // Prepare makes room for positions [0, n) of `seq`; kContextFull beyond max_positions.
  ModelResult<Ok> Prepare(int seq, int n);
  // Unshare gives `seq` its own copy of every shared block holding a
  // position in [first, end) (copy-on-write before a rewind writes there).
  ModelResult<Ok> Unshare(int seq, int first, int end);
  // SetLength records that positions [0, n) of `seq` are valid.
  void SetLength(int seq, int n);
  // Release lets go of every block of `seq`; a block nobody else holds is
  // zeroed and freed.
  void Release(int seq);
  size_t blocks_in_use() const;
  size_t block_bytes() const { return block_bytes_; }

  // --- shared blocks (the prompt cache) ---------------------------------------
  // Share starts the empty sequence `seq` with `blocks` (held by someone
  // else, e.g. the prompt cache) and `length` valid positions in them.
  void Share(int seq, std::span<const int> blocks, int length);
  // Blocks is `seq`'s block table (empty if unknown).
  std::span<const int> Blocks(int seq) const;
  // Retain / Drop add and remove one holder of `block`; the last Drop zeroes
  // and frees it.
  void Retain(int block);
  void Drop(int block);
  int holders(int block) const { return refs_.at(static_cast<size_t>(block)); }
  // SetReclaimer installs what to call when a new block cannot be mapped:
  // it frees memory (evicts a cached block) and returns false when it has
  // nothing left to give. The prompt cache gives way to live sequences so.
  void SetReclaimer(std::function<bool()> reclaim) { reclaim_ = std::move(reclaim); }
  // SetMaxBlocks caps the blocks mapped at once (0: only memory bounds
  // them); at the cap, a new block is reclaimed or refused (kOutOfMemory).
  void SetMaxBlocks(size_t n) { max_blocks_ = n; }

  // Store / Load one position's K or V (kv_dim floats) of `layer`.
  void Store(int layer, int kv, int seq, int pos, const float* src);
  void Load(int layer, int kv, int seq, int pos, float* dst) const;
  // LoadRange loads elements [offset, offset + n) of that position (one or
  // more heads). Concurrent Load/LoadRange calls are safe.
  void LoadRange(int layer, int kv, int seq, int pos, int offset, int n, float* dst) const;
  // LoadPositions loads elements [offset, offset + n) of positions
  // [0, n_pos) into dst [n_pos, n] (one head's keys or values for attention).
  void LoadPositions(int layer, int kv, int seq, int n_pos, int offset, int n, float* dst) const;
  // Rows describes head offset / head_dim's rows of positions [0, n_pos)
  // where they sit (no copy) for AttendHead; `offset` is a multiple of
  // head_dim. `blocks` receives one pointer per block and must outlive the
  // result. Valid until the sequence's blocks change.
  KvRows Rows(int layer, int kv, int seq, int n_pos, int offset, std::vector<const void*>* blocks) const;

 private:
  // BlockOf is the block holding `pos` of `seq` (checked against its table);
  // Offset the byte offset of that head's row of `pos` in a block.
  uint8_t* BlockOf(int seq, int pos) const;
  size_t Offset(int layer, int kv, int head, int pos) const;
  // Copy converts elements [offset, offset + n) of `pos` (they may span
  // heads) from `block` to F32.
  void Copy(const uint8_t* block, int layer, int kv, int pos, int offset, int n, float* dst) const;
  ModelResult<int> NewBlock();  // one holder; reclaims cached blocks when memory runs out

  int n_layer_, n_head_kv_, head_dim_, kv_dim_, max_positions_;
  KvType type_;
  size_t elem_size_, block_bytes_;
  std::vector<LockedBuffer> blocks_;  // each block_bytes_, zero-filled when mapped
  std::vector<int> refs_;   // holders per block; 0 = in free_
  std::vector<int> free_;
  std::function<bool()> reclaim_;
  size_t max_blocks_ = 0;
  std::map<int, std::vector<int>> tables_;  // seq → block ids
  std::map<int, int> lengths_;
};

}  // namespace cllm::engine
