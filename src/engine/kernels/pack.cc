// Load-time weight layouts (kernels.h, "Weight layouts made at load time"):
// which layout suits a matrix on an instruction set, and the repacking.
#include <cstring>
#include <vector>

#include "base/check.h"
#include "engine/kernels/blocks.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/simd_internal.h"
#include "engine/kernels/thread_pool.h"

namespace cllm::engine {

GgmlType PackedLayoutFor(Isa isa, GgmlType type, int64_t n_rows) {
  // Only the AVX-512 kernels read kQ8_0x8: AVX2 has no vpdpbusd, and its
  // vpmaddubsw would saturate on q + 128 (255 · 127 · 2 > 32767).
  if (type == GgmlType::kQ8_0 && isa == Isa::kAvx512 && n_rows > 0 && n_rows % 8 == 0) return kQ8_0x8;
  return type;
}

void PackRows(GgmlType type, GgmlType to, const void* src, int64_t n_rows, int64_t n_cols, void* dst) {
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  if (to == type) {
    std::memcpy(dst, src, row_bytes * static_cast<size_t>(n_rows));
    return;
  }
  CLLM_CHECK(type == GgmlType::kQ8_0 && to == kQ8_0x8 && n_rows % 8 == 0);
  const int64_t nb = n_cols / kQK;
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<simd::BlockQ8_0x8*>(dst);
  // Groups of 8 rows are independent: spread them over the engine's threads.
  ParallelFor(n_rows / 8, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t ib = 0; ib < nb; ++ib) {
        simd::BlockQ8_0x8& o = out[g * nb + ib];
        for (int r = 0; r < 8; ++r) {
          const uint8_t* b = in + static_cast<size_t>(g * 8 + r) * row_bytes + static_cast<size_t>(ib) * sizeof(BlockQ8_0);
          std::memcpy(&o.d[r], b, 2);
          for (int k = 0; k < 8; ++k) {
            uint32_t q;
            std::memcpy(&q, b + 2 + 4 * k, 4);
            q ^= 0x80808080u;  // q + 128 in each byte
            std::memcpy(&o.qs[k * 32 + r * 4], &q, 4);
          }
        }
      }
    }
  });
}

void DequantizeMatrixRow(GgmlType type, const void* w, int64_t r, int64_t n_cols, float* dst) {
  if (type == kQ8_0x8) {
    thread_local std::vector<BlockQ8_0> blocks;
    blocks.resize(static_cast<size_t>(n_cols / kQK));
    simd::UnpackQ8_0x8Row(w, r, n_cols, blocks.data());
    return DequantizeRow(GgmlType::kQ8_0, blocks.data(), dst, n_cols);
  }
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  DequantizeRow(type, static_cast<const uint8_t*>(w) + row_bytes * static_cast<size_t>(r), dst, n_cols);
}

namespace simd {

void UnpackQ8_0x8Row(const void* w, int64_t r, int64_t n_cols, BlockQ8_0* out) {
  const int64_t nb = n_cols / kQK;
  const auto* group = static_cast<const BlockQ8_0x8*>(w) + (r / 8) * nb;
  const int row = static_cast<int>(r % 8);
  for (int64_t ib = 0; ib < nb; ++ib) {
    out[ib].d = group[ib].d[row];
    for (int k = 0; k < 8; ++k) {
      for (int i = 0; i < 4; ++i) {
        out[ib].qs[k * 4 + i] = static_cast<int8_t>(group[ib].qs[k * 32 + row * 4 + i] ^ 0x80u);
      }
    }
  }
}

}  // namespace simd
}  // namespace cllm::engine
