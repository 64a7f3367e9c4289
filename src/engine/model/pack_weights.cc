// PackWeights (config.h): load-time weight layouts for the active kernels.
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/model/config.h"

namespace cllm::engine {
namespace {

// AllocPacked maps `bytes` of anonymous memory for packed weights; null if
// the map fails. (Transparent huge pages were tried: +10% one-thread decode
// on the 0.6B Q8_0, but zeroing them doubled the load time; not taken.)
std::shared_ptr<void> AllocPacked(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return std::shared_ptr<void>(p, [bytes](void* q) { munmap(q, bytes); });
}

// PackInPlace rewrites each matrix where it sits (a writable source): a
// slice of whole 16-row units is copied out, then packed back over itself.
size_t PackInPlace(ModelWeights& w, const GgufFile& f, const std::vector<std::pair<WeightRef*, GgmlType>>& to_pack) {
  const ByteSpan all = f.source().bytes();
  uint8_t* writable = f.source().WritableBytes();
  std::vector<uint8_t> tmp;
  size_t packed = 0;
  for (auto [r, to] : to_pack) {
    const auto* src = static_cast<const uint8_t*>(r->data);
    const size_t row_bytes = RowSizeBytes(r->type, r->n_cols), bytes = row_bytes * static_cast<size_t>(r->n_rows);
    // the matrix must lie inside the source (BindWeights guarantees it; checked, not assumed)
    if (src < all.data() || bytes > all.size() || static_cast<size_t>(src - all.data()) > all.size() - bytes) continue;
    uint8_t* dst = writable + (src - all.data());
    const int64_t slice = std::max<int64_t>(16, static_cast<int64_t>((size_t{4} << 20) / row_bytes) / 16 * 16);
    for (int64_t r0 = 0; r0 < r->n_rows; r0 += slice) {
      const int64_t n = std::min(slice, r->n_rows - r0);
      const size_t off = static_cast<size_t>(r0) * row_bytes, len = static_cast<size_t>(n) * row_bytes;
      tmp.assign(src + off, src + off + len);
      PackRows(r->type, to, tmp.data(), n, r->n_cols, dst + off);
    }
    if (r->data == w.token_embd.data && r->type == w.token_embd.type) w.token_embd = WeightRef{to, r->n_cols, r->n_rows, dst};
    w.in_place.push_back({static_cast<size_t>(src - all.data()), to, r->n_rows, r->n_cols});
    r->type = to;
    r->data = dst;
    packed += bytes;
  }
  return packed;
}

}  // namespace

size_t PackWeights(ModelWeights& w, const GgufFile& f) {
  if (const char* env = std::getenv("CLLM_REPACK"); env != nullptr && std::strcmp(env, "0") == 0) return 0;
  const bool in_place = f.source().WritableBytes() != nullptr;
  if (!f.source().CanDiscard() && !in_place) return 0;
  const Isa isa = ActiveIsa();
  std::vector<WeightRef*> refs;
  for (LayerWeights& l : w.layers) {
    for (WeightRef* r : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) refs.push_back(r);
  }
  refs.push_back(&w.output);
  // One arena for every repacked matrix (64-byte aligned offsets).
  std::vector<std::pair<WeightRef*, GgmlType>> to_pack;
  size_t total = 0;
  for (WeightRef* r : refs) {
    if (r->data == nullptr) continue;
    const GgmlType to = PackedLayoutFor(isa, r->type, r->n_rows);
    if (to == r->type) continue;
    to_pack.emplace_back(r, to);
    total += (RowSizeBytes(r->type, r->n_cols) * static_cast<size_t>(r->n_rows) + 63) / 64 * 64;
  }
  if (to_pack.empty()) return 0;
  if (in_place) return PackInPlace(w, f, to_pack);
  auto arena = AllocPacked(total);
  if (arena == nullptr) return 0;  // no memory for a copy: keep the file's layout
  auto* dst = static_cast<uint8_t*>(arena.get());
  size_t packed = 0;
  for (auto [r, to] : to_pack) {
    const size_t row_bytes = RowSizeBytes(r->type, r->n_cols);
    // Slices of whole 16-row units (a unit's bytes sit where its rows did),
    // each slice's file pages let go once packed, so memory never holds
    // much more than the file. A tied output is token_embd: embedding
    // lookups then read the packed copy too (DequantizeMatrixRow).
    const int64_t slice = std::max<int64_t>(16, static_cast<int64_t>((size_t{4} << 20) / row_bytes) / 16 * 16);
    const auto* src = static_cast<const uint8_t*>(r->data);
    for (int64_t r0 = 0; r0 < r->n_rows; r0 += slice) {
      const int64_t n = std::min(slice, r->n_rows - r0);
      const size_t off = static_cast<size_t>(r0) * row_bytes, len = static_cast<size_t>(n) * row_bytes;
      PackRows(r->type, to, src + off, n, r->n_cols, dst + off);
      f.source().Discard(src + off, len);
    }
    const size_t bytes = row_bytes * static_cast<size_t>(r->n_rows);
    if (r->data == w.token_embd.data && r->type == w.token_embd.type) w.token_embd = WeightRef{to, r->n_cols, r->n_rows, dst};
    r->type = to;
    r->data = dst;
    dst += (bytes + 63) / 64 * 64;
    packed += bytes;
  }
  w.packed.push_back(std::move(arena));
  return packed;
}

std::vector<uint8_t> FileImage(const ModelWeights& w, const GgufFile& f) {
  const ByteSpan all = f.source().bytes();
  std::vector<uint8_t> image(all.begin(), all.end());
  for (const ModelWeights::InPlace& m : w.in_place) {
    UnpackRows(m.packed_type, all.data() + m.offset, m.n_rows, m.n_cols, image.data() + m.offset);
  }
  return image;
}

}  // namespace cllm::engine
