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

namespace {

// PackSuperBlocks interleaves Q4_K or Q6_K rows by 8, super-block by
// super-block; groups of 8 rows are independent (spread over the threads).
void PackSuperBlocks(GgmlType type, const void* src, int64_t n_rows, int64_t n_cols, void* dst) {
  const int64_t nb = n_cols / kQKK;
  ParallelFor(n_rows / 8, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t ib = 0; ib < nb; ++ib) {
        if (type == GgmlType::kQ4_K) {
          const BlockQ4_K* rows[8];
          for (int r = 0; r < 8; ++r) rows[r] = static_cast<const BlockQ4_K*>(src) + (g * 8 + r) * nb + ib;
          simd::PackQ4_Kx8(rows, static_cast<simd::BlockQ4_Kx8*>(dst) + g * nb + ib);
        } else {
          const BlockQ6_K* rows[8];
          for (int r = 0; r < 8; ++r) rows[r] = static_cast<const BlockQ6_K*>(src) + (g * 8 + r) * nb + ib;
          simd::PackQ6_Kx8(rows, static_cast<simd::BlockQ6_Kx8*>(dst) + g * nb + ib);
        }
      }
    }
  });
}

}  // namespace

GgmlType PackedLayoutFor(Isa isa, GgmlType type, int64_t n_rows) {
  // Only the AVX-512 kernels read kQ8_0x16: AVX2 has no vpdpbusd, and its
  // vpmaddubsw would saturate on q + 128 (255 · 127 · 2 > 32767).
  if (isa < Isa::kAvx512 || n_rows <= 0 || n_rows % 8 != 0) return type;
  if (type == GgmlType::kQ8_0) return n_rows % 16 == 0 ? kQ8_0x16 : type;
  if (type == GgmlType::kQ4_K) return kQ4_Kx8;
  if (type == GgmlType::kQ6_K) return kQ6_Kx8;
  return type;
}

void PackRows(GgmlType type, GgmlType to, const void* src, int64_t n_rows, int64_t n_cols, void* dst) {
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  if (to == type) {
    std::memcpy(dst, src, row_bytes * static_cast<size_t>(n_rows));
    return;
  }
  CLLM_CHECK(n_rows % 8 == 0);
  if ((type == GgmlType::kQ4_K && to == kQ4_Kx8) || (type == GgmlType::kQ6_K && to == kQ6_Kx8)) {
    PackSuperBlocks(type, src, n_rows, n_cols, dst);
    return;
  }
  CLLM_CHECK(type == GgmlType::kQ8_0 && to == kQ8_0x16 && n_rows % 16 == 0);
  const int64_t nb = n_cols / kQK;
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<simd::BlockQ8_0x16*>(dst);
  // Groups of 8 rows are independent: spread them over the engine's threads.
  ParallelFor(n_rows / 8, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t ib = 0; ib < nb; ++ib) {
        simd::BlockQ8_0x16& o = out[(g / 2) * nb + ib];
        for (int r = 0; r < 8; ++r) {
          const uint8_t* b = in + static_cast<size_t>(g * 8 + r) * row_bytes + static_cast<size_t>(ib) * sizeof(BlockQ8_0);
          const int lr = static_cast<int>(g % 2) * 8 + r;  // the row within its unit
          std::memcpy(&o.d[lr], b, 2);
          for (int k = 0; k < 8; ++k) {
            uint32_t q;
            std::memcpy(&q, b + 2 + 4 * k, 4);
            q ^= 0x80808080u;  // q + 128 in each byte
            std::memcpy(&o.qs[k * 64 + lr * 4], &q, 4);
          }
        }
      }
    }
  });
}

GgmlType FileTypeOf(GgmlType type) {
  if (type == kQ8_0x16) return GgmlType::kQ8_0;
  if (type == kQ4_Kx8) return GgmlType::kQ4_K;
  if (type == kQ6_Kx8) return GgmlType::kQ6_K;
  return type;
}

void UnpackRow(GgmlType type, const void* w, int64_t r, int64_t n_cols, void* dst) {
  if (type == kQ8_0x16) return simd::UnpackQ8_0x16Row(w, r, n_cols, static_cast<BlockQ8_0*>(dst));
  if (type == kQ4_Kx8) return simd::UnpackQ4_Kx8Row(w, r, n_cols, static_cast<BlockQ4_K*>(dst));
  if (type == kQ6_Kx8) return simd::UnpackQ6_Kx8Row(w, r, n_cols, static_cast<BlockQ6_K*>(dst));
  const size_t row_bytes = RowSizeBytes(type, n_cols);
  std::memcpy(dst, static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * row_bytes, row_bytes);
}

void UnpackRows(GgmlType type, const void* src, int64_t n_rows, int64_t n_cols, void* dst) {
  const size_t row_bytes = RowSizeBytes(FileTypeOf(type), n_cols);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < n_rows; ++r) UnpackRow(type, src, r, n_cols, out + static_cast<size_t>(r) * row_bytes);
}

void DequantizeMatrixRow(GgmlType type, const void* w, int64_t r, int64_t n_cols, float* dst) {
  const GgmlType file = FileTypeOf(type);
  if (file == type) {
    const size_t row_bytes = RowSizeBytes(type, n_cols);
    return DequantizeRow(type, static_cast<const uint8_t*>(w) + row_bytes * static_cast<size_t>(r), dst, n_cols);
  }
  thread_local std::vector<uint64_t> row;  // the file's blocks of this row (8-byte aligned)
  row.resize((RowSizeBytes(file, n_cols) + 7) / 8);
  UnpackRow(type, w, r, n_cols, row.data());
  DequantizeRow(file, row.data(), dst, n_cols);
}

namespace simd {

void UnpackQ8_0x16Row(const void* w, int64_t r, int64_t n_cols, BlockQ8_0* out) {
  const int64_t nb = n_cols / kQK;
  const auto* unit = static_cast<const BlockQ8_0x16*>(w) + (r / 16) * nb;
  const int row = static_cast<int>(r % 16);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ8_0x16& u = unit[ib];
    out[ib].d = u.d[row];
    for (int k = 0; k < 8; ++k) {
      for (int i = 0; i < 4; ++i) {
        out[ib].qs[k * 4 + i] = static_cast<int8_t>(u.qs[k * 64 + row * 4 + i] ^ 0x80u);
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

// Q6_K element e (0..255): half H = e / 128, n = (e % 128) / 32, l = e % 32;
// low 4 bits in ql[64H + 32·(n % 2) + l] (nibble n / 2), top 2 bits in
// qh[32H + l] (bits 2n, 2n + 1). Column c of the x8 layout: J = c / 32,
// half h = (c % 32) / 16, k = (c % 16) / 4, b = c % 4.
namespace {
int Q6Lo(int e) { return 64 * (e / 128) + 32 * ((e % 128) / 32 % 2) + e % 32; }
int Q6LoShift(int e) { return 4 * ((e % 128) / 64); }
int Q6Hi(int e) { return 32 * (e / 128) + e % 32; }
int Q6HiShift(int e) { return 2 * ((e % 128) / 32); }
int X8Lo(int c, int row) { return 192 * (c / 32) + ((c % 16) / 4 * 8 + row) * 4 + c % 4; }
int X8LoShift(int c) { return 4 * ((c % 32) / 16); }
int X8Hi(int c, int row) { return 192 * (c / 32) + 128 + ((c % 16) / 8 * 8 + row) * 4 + c % 4; }
int X8HiShift(int c) { return 2 * (2 * ((c % 16) / 4 % 2) + (c % 32) / 16); }
}  // namespace

void PackQ6_Kx8(const BlockQ6_K* const* rows, BlockQ6_Kx8* out) {
  auto word = [](const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  for (int r = 0; r < 8; ++r) {
    const BlockQ6_K& b = *rows[r];
    out->d[r] = b.d;
    for (int s = 0; s < 16; ++s) out->scales[8 * s + r] = b.scales[s];
    // columns 32J.. are Q6_K elements with H = J / 4, n = J % 4 (see Q6Lo)
    for (int J = 0; J < 8; ++J) {
      const int H = J / 4, n = J % 4;
      const uint8_t* ql = b.ql + 64 * H + 32 * (n % 2);
      const uint8_t* qh = b.qh + 32 * H;
      const int lo_shift = 4 * (n / 2), hi_shift = 2 * n;
      uint8_t* dst = out->q + 192 * J;
      uint32_t hi2[4][2];  // [k][half]: 2-bit fields of 4 columns
      for (int k = 0; k < 4; ++k) {
        const uint32_t lo0 = (word(ql + 4 * k) >> lo_shift) & 0x0f0f0f0fu;
        const uint32_t lo1 = (word(ql + 16 + 4 * k) >> lo_shift) & 0x0f0f0f0fu;
        const uint32_t v = lo0 | (lo1 << 4);
        std::memcpy(dst + (k * 8 + r) * 4, &v, 4);
        hi2[k][0] = (word(qh + 4 * k) >> hi_shift) & 0x03030303u;
        hi2[k][1] = (word(qh + 16 + 4 * k) >> hi_shift) & 0x03030303u;
      }
      for (int m = 0; m < 2; ++m) {
        const uint32_t v = hi2[2 * m][0] | (hi2[2 * m][1] << 2) | (hi2[2 * m + 1][0] << 4) | (hi2[2 * m + 1][1] << 6);
        std::memcpy(dst + 128 + (m * 8 + r) * 4, &v, 4);
      }
    }
  }
}

void UnpackQ6_Kx8Row(const void* w, int64_t r, int64_t n_cols, BlockQ6_K* out) {
  const int64_t nb = n_cols / kQKK;
  const auto* group = static_cast<const BlockQ6_Kx8*>(w) + (r / 8) * nb;
  const int row = static_cast<int>(r % 8);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const BlockQ6_Kx8& g = group[ib];
    BlockQ6_K& o = out[ib];
    std::memset(&o, 0, sizeof(o));
    o.d = g.d[row];
    for (int s = 0; s < 16; ++s) o.scales[s] = g.scales[8 * s + row];
    for (int e = 0; e < kQKK; ++e) {
      const int lo = (g.q[X8Lo(e, row)] >> X8LoShift(e)) & 0x0f, hi = (g.q[X8Hi(e, row)] >> X8HiShift(e)) & 3;
      o.ql[Q6Lo(e)] |= static_cast<uint8_t>(lo << Q6LoShift(e));
      o.qh[Q6Hi(e)] |= static_cast<uint8_t>(hi << Q6HiShift(e));
    }
  }
}

}  // namespace simd
}  // namespace cllm::engine
