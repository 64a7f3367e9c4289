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
  if (isa != Isa::kAvx512 || n_rows <= 0 || n_rows % 8 != 0) return type;
  if (type == GgmlType::kQ8_0) return kQ8_0x8;
  if (type == GgmlType::kQ4_K) return kQ4_Kx8;
  return type;
}

void PackRows(GgmlType type, GgmlType to, const void* src, int64_t n_rows, int64_t n_cols, void* dst) {
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  if (to == type) {
    std::memcpy(dst, src, row_bytes * static_cast<size_t>(n_rows));
    return;
  }
  CLLM_CHECK(n_rows % 8 == 0);
  if (type == GgmlType::kQ4_K && to == kQ4_Kx8) {
    const int64_t nb = n_cols / kQKK;
    const auto* in = static_cast<const BlockQ4_K*>(src);
    auto* out = static_cast<simd::BlockQ4_Kx8*>(dst);
    ParallelFor(n_rows / 8, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        for (int64_t ib = 0; ib < nb; ++ib) {
          const BlockQ4_K* rows[8];
          for (int r = 0; r < 8; ++r) rows[r] = &in[(g * 8 + r) * nb + ib];
          simd::PackQ4_Kx8(rows, &out[g * nb + ib]);
        }
      }
    });
    return;
  }
  CLLM_CHECK(type == GgmlType::kQ8_0 && to == kQ8_0x8);
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
  if (type == kQ4_Kx8) {
    thread_local std::vector<BlockQ4_K> blocks;
    blocks.resize(static_cast<size_t>(n_cols / kQKK));
    simd::UnpackQ4_Kx8Row(w, r, n_cols, blocks.data());
    return DequantizeRow(GgmlType::kQ4_K, blocks.data(), dst, n_cols);
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

namespace {

// The 12-byte Q4_K packing of 8 six-bit scales and 8 mins (dequantize.cc's
// ScaleMinK4 is the reading side).
void ReadScalesK4(const uint8_t* q, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; ++j) sc[j] = q[j] & 63, m[j] = q[j + 4] & 63;
  for (int j = 4; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    m[j] = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void WriteScalesK4(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    q[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
  }
}

}  // namespace

void PackQ4_Kx8(const BlockQ4_K* const* rows, BlockQ4_Kx8* out) {
  uint8_t sc[64], m[64];  // index 8·j + row
  for (int r = 0; r < 8; ++r) {
    out->d[r] = rows[r]->d;
    out->dmin[r] = rows[r]->dmin;
    uint8_t s8[8], m8[8];
    ReadScalesK4(rows[r]->scales, s8, m8);
    for (int j = 0; j < 8; ++j) sc[8 * j + r] = s8[j], m[8 * j + r] = m8[j];
  }
  for (int b = 0; b < 32; ++b) {
    out->sc_lo[b] = static_cast<uint8_t>((sc[b] & 0x0f) | ((sc[b + 32] & 0x0f) << 4));
    out->m_lo[b] = static_cast<uint8_t>((m[b] & 0x0f) | ((m[b + 32] & 0x0f) << 4));
    out->hi[b] = static_cast<uint8_t>((sc[b] >> 4) | ((sc[b + 32] >> 4) << 2) | ((m[b] >> 4) << 4) | ((m[b + 32] >> 4) << 6));
  }
  // Sub-block j's columns are the low (j even) or high (j odd) nibbles of
  // qs[32·(j/2) ..+32): columns 4k..4k+3 at bytes 4k.., 16+4k.. at 16+4k..
  for (int j = 0; j < 8; ++j) {
    const int shift = 4 * (j % 2);
    for (int r = 0; r < 8; ++r) {
      const uint8_t* src = rows[r]->qs + 32 * (j / 2);
      for (int k = 0; k < 4; ++k) {
        uint32_t lo, hi;
        std::memcpy(&lo, src + 4 * k, 4);
        std::memcpy(&hi, src + 16 + 4 * k, 4);
        const uint32_t v = ((lo >> shift) & 0x0f0f0f0fu) | (((hi >> shift) & 0x0f0f0f0fu) << 4);
        std::memcpy(&out->qs[((j * 4 + k) * 8 + r) * 4], &v, 4);
      }
    }
  }
}

void UnpackQ4_Kx8Row(const void* w, int64_t r, int64_t n_cols, BlockQ4_K* out) {
  const int64_t nb = n_cols / kQKK;
  const auto* group = static_cast<const BlockQ4_Kx8*>(w) + (r / 8) * nb;
  const int row = static_cast<int>(r % 8);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ4_Kx8& g = group[ib];
    BlockQ4_K& o = out[ib];
    o.d = g.d[row];
    o.dmin = g.dmin[row];
    uint8_t s8[8], m8[8];
    for (int j = 0; j < 8; ++j) {
      const int i = 8 * j + row, b = i % 32, shift = i < 32 ? 0 : 4, hshift = i < 32 ? 0 : 2;
      s8[j] = static_cast<uint8_t>(((g.sc_lo[b] >> shift) & 0x0f) | (((g.hi[b] >> hshift) & 3) << 4));
      m8[j] = static_cast<uint8_t>(((g.m_lo[b] >> shift) & 0x0f) | (((g.hi[b] >> (hshift + 4)) & 3) << 4));
    }
    WriteScalesK4(s8, m8, o.scales);
    std::memset(o.qs, 0, sizeof(o.qs));
    for (int e = 0; e < kQKK; ++e) {
      const int j = e / 32, c = e % 32, half = c / 16, k = (c % 16) / 4, b = c % 4;
      const uint8_t q = static_cast<uint8_t>((g.qs[((j * 4 + k) * 8 + row) * 4 + b] >> (4 * half)) & 0x0f);
      o.qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>(q << (e % 64 >= 32 ? 4 : 0));
    }
  }
}

}  // namespace simd
}  // namespace cllm::engine
