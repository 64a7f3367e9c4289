// kv_cache.h — keys and values of every sequence, in fixed-size blocks.
//
// Each sequence owns a block table; a block holds kBlockSize positions of
// every layer's K and V:
//   block: [n_layer][2 (K, V)][kBlockSize][kv_dim]   in F32 or F16
// Blocks come from a shared pool, so sequences of different lengths share
// memory without fragmentation; a released block is zeroed before reuse
// (one user's context never lingers for another). Blocks are LockedBuffers:
// anonymous pages locked where the OS allows and excluded from core dumps,
// since they hold what users said (docs/security.md, "secrets off disk").
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "base/locked_buffer.h"
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
  // SetLength records that positions [0, n) of `seq` are valid.
  void SetLength(int seq, int n);
  // Release zeroes and frees every block of `seq`.
  void Release(int seq);
  size_t blocks_in_use() const;

  // Store / Load one position's K or V (kv_dim floats) of `layer`.
  void Store(int layer, int kv, int seq, int pos, const float* src);
  void Load(int layer, int kv, int seq, int pos, float* dst) const;
  // LoadRange loads elements [offset, offset + n) of that position (one or
  // more heads). Concurrent Load/LoadRange calls are safe.
  void LoadRange(int layer, int kv, int seq, int pos, int offset, int n, float* dst) const;
  // LoadPositions loads elements [offset, offset + n) of positions
  // [0, n_pos) into dst [n_pos, n] (one head's keys or values for attention).
  void LoadPositions(int layer, int kv, int seq, int n_pos, int offset, int n, float* dst) const;

 private:
  uint8_t* Slot(int layer, int kv, int seq, int pos) const;

  int n_layer_, kv_dim_, max_positions_;
  KvType type_;
  size_t elem_size_, block_bytes_;
  std::vector<LockedBuffer> blocks_;  // each block_bytes_, zero-filled when mapped
  std::vector<int> free_;
  std::map<int, std::vector<int>> tables_;  // seq → block ids
  std::map<int, int> lengths_;
};

}  // namespace cllm::engine
