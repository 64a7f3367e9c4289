#include "engine/model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/check.h"
#include "base/secure.h"
#include "engine/kernels/kernels.h"

namespace cllm::engine {

KvCache::KvCache(const ModelConfig& c, KvType type, int max_positions)
    : n_layer_(c.n_layer),
      n_head_kv_(c.n_head_kv),
      head_dim_(c.head_dim),
      kv_dim_(c.n_head_kv * c.head_dim),
      max_positions_(max_positions),
      type_(type),
      elem_size_(type == KvType::kF32 ? 4 : 2),
      block_bytes_(static_cast<size_t>(n_layer_) * 2 * kBlockSize * static_cast<size_t>(kv_dim_) * elem_size_) {}

int KvCache::Length(int seq) const {
  auto it = lengths_.find(seq);
  return it == lengths_.end() ? 0 : it->second;
}

ModelResult<int> KvCache::NewBlock() {
  for (;;) {
    if (!free_.empty()) {
      const int id = free_.back();
      free_.pop_back();
      refs_[static_cast<size_t>(id)] = 1;
      return id;
    }
    std::string why = "at its cap of " + std::to_string(max_blocks_) + " blocks";
    if (max_blocks_ == 0 || blocks_.size() < max_blocks_) {
      auto block = LockedBuffer::Allocate(block_bytes_);  // fresh anonymous pages: zero
      if (block.ok()) {
        blocks_.push_back(std::move(block).value());
        refs_.push_back(1);
        return static_cast<int>(blocks_.size() - 1);
      }
      why = block.detail();
    }
    // Out of memory: cached blocks give way to live sequences.
    if (!reclaim_ || !reclaim_()) return MakeError(ModelErrc::kOutOfMemory, "KV cache: " + why);
  }
}

ModelResult<Ok> KvCache::Prepare(int seq, int n) {
  if (n > max_positions_) {
    return MakeError(ModelErrc::kContextFull, "sequence needs " + std::to_string(n) + " positions, context is " +
                                                  std::to_string(max_positions_));
  }
  auto& table = tables_[seq];
  while (static_cast<int>(table.size()) * kBlockSize < n) {
    CLLM_ASSIGN_OR_RETURN(int id, NewBlock());
    table.push_back(id);
  }
  return OkStatus();
}

ModelResult<Ok> KvCache::Unshare(int seq, int first, int end) {
  auto it = tables_.find(seq);
  if (it == tables_.end() || end <= first) return OkStatus();
  const int last_block = std::min((end - 1) / kBlockSize, static_cast<int>(it->second.size()) - 1);
  for (int b = std::max(first, 0) / kBlockSize; b <= last_block; ++b) {
    const int old = it->second[static_cast<size_t>(b)];
    if (refs_[static_cast<size_t>(old)] == 1) continue;
    CLLM_ASSIGN_OR_RETURN(int copy, NewBlock());  // may evict: `it` stays valid (tables_ is a map)
    std::memcpy(blocks_[static_cast<size_t>(copy)].data(), blocks_[static_cast<size_t>(old)].data(), block_bytes_);
    it->second[static_cast<size_t>(b)] = copy;
    Drop(old);
  }
  return OkStatus();
}

void KvCache::SetLength(int seq, int n) { lengths_[seq] = n; }

void KvCache::Release(int seq) {
  auto it = tables_.find(seq);
  if (it != tables_.end()) {
    for (int id : it->second) Drop(id);
    tables_.erase(it);
  }
  lengths_.erase(seq);
}

void KvCache::Share(int seq, std::span<const int> blocks, int length) {
  CLLM_CHECK(Blocks(seq).empty() && length >= 0 && length <= static_cast<int>(blocks.size()) * kBlockSize);
  auto& table = tables_[seq];
  for (int id : blocks) {
    Retain(id);
    table.push_back(id);
  }
  lengths_[seq] = length;
}

std::span<const int> KvCache::Blocks(int seq) const {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return {};
  return it->second;
}

void KvCache::Retain(int block) {
  CLLM_CHECK(block >= 0 && static_cast<size_t>(block) < refs_.size() && refs_[static_cast<size_t>(block)] > 0);
  ++refs_[static_cast<size_t>(block)];
}

void KvCache::Drop(int block) {
  CLLM_CHECK(block >= 0 && static_cast<size_t>(block) < refs_.size() && refs_[static_cast<size_t>(block)] > 0);
  if (--refs_[static_cast<size_t>(block)] > 0) return;
  SecureZero(blocks_[static_cast<size_t>(block)].data(), block_bytes_);  // nothing of its user remains
  free_.push_back(block);
}

size_t KvCache::blocks_in_use() const { return blocks_.size() - free_.size(); }

uint8_t* KvCache::BlockOf(int seq, int pos) const {
  const auto& table = tables_.at(seq);
  CLLM_CHECK(pos >= 0 && pos / kBlockSize < static_cast<int>(table.size()));
  // Store writes through it, the Load* methods only read it.
  return const_cast<uint8_t*>(blocks_[table[pos / kBlockSize]].data());
}

size_t KvCache::Offset(int layer, int kv, int head, int pos) const {
  const size_t run = (static_cast<size_t>(layer) * 2 + kv) * n_head_kv_ + head;  // one head's kBlockSize rows
  return ((run * kBlockSize + pos % kBlockSize) * head_dim_) * elem_size_;
}

void KvCache::Store(int layer, int kv, int seq, int pos, const float* src) {
  uint8_t* block = BlockOf(seq, pos);  // checks pos against the table
  // Only a block this sequence alone holds is written (Unshare before a rewind).
  CLLM_CHECK(refs_[static_cast<size_t>(tables_.at(seq)[static_cast<size_t>(pos / kBlockSize)])] == 1);
  for (int h = 0; h < n_head_kv_; ++h, src += head_dim_) {
    uint8_t* dst = block + Offset(layer, kv, h, pos);
    if (type_ == KvType::kF32) {
      std::memcpy(dst, src, static_cast<size_t>(head_dim_) * 4);
    } else {
      F32ToF16Row(src, reinterpret_cast<uint16_t*>(dst), head_dim_);
    }
  }
}

void KvCache::Load(int layer, int kv, int seq, int pos, float* dst) const {
  LoadRange(layer, kv, seq, pos, 0, kv_dim_, dst);
}

void KvCache::Copy(const uint8_t* block, int layer, int kv, int pos, int offset, int n, float* dst) const {
  while (n > 0) {  // piece by piece: a range may span heads
    const int head = offset / head_dim_, inner = offset % head_dim_;
    const int m = std::min(n, head_dim_ - inner);
    const uint8_t* src = block + Offset(layer, kv, head, pos) + static_cast<size_t>(inner) * elem_size_;
    if (type_ == KvType::kF32) {
      std::memcpy(dst, src, static_cast<size_t>(m) * 4);
    } else {
      F16ToF32Row(reinterpret_cast<const uint16_t*>(src), dst, m);
    }
    offset += m;
    n -= m;
    dst += m;
  }
}

void KvCache::LoadRange(int layer, int kv, int seq, int pos, int offset, int n, float* dst) const {
  CLLM_CHECK(offset >= 0 && n >= 0 && offset + n <= kv_dim_);
  Copy(BlockOf(seq, pos), layer, kv, pos, offset, n, dst);
}

void KvCache::LoadPositions(int layer, int kv, int seq, int n_pos, int offset, int n, float* dst) const {
  const auto& table = tables_.at(seq);  // one lookup for all positions
  CLLM_CHECK(n_pos >= 0 && (n_pos + kBlockSize - 1) / kBlockSize <= static_cast<int>(table.size()));
  CLLM_CHECK(offset >= 0 && n >= 0 && offset + n <= kv_dim_);
  for (int p = 0; p < n_pos; ++p, dst += n) Copy(blocks_[table[p / kBlockSize]].data(), layer, kv, p, offset, n, dst);
}

KvRows KvCache::Rows(int layer, int kv, int seq, int n_pos, int offset, std::vector<const void*>* blocks) const {
  const auto& table = tables_.at(seq);
  const int n_blocks = (n_pos + kBlockSize - 1) / kBlockSize;
  CLLM_CHECK(n_pos >= 0 && n_blocks <= static_cast<int>(table.size()) && offset >= 0 && offset < kv_dim_ &&
             offset % head_dim_ == 0);
  blocks->resize(static_cast<size_t>(n_blocks));
  const size_t first = Offset(layer, kv, offset / head_dim_, 0);
  for (int b = 0; b < n_blocks; ++b) (*blocks)[b] = blocks_[table[b]].data() + first;
  return KvRows{blocks->data(), kBlockSize, head_dim_, type_ == KvType::kF16};
}

}  // namespace cllm::engine
