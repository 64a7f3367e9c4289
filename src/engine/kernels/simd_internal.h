// simd_internal.h — what the per-ISA kernel files share (not a public header).
//
// Quantized weights are multiplied with activations rounded to 8-bit blocks
// (as llama.cpp does), so the inner loops are integer dot products:
//   ActQ8_32  for Q8_0 / Q4_0 weights   (one block per 32 weight elements)
//   ActQ8_256 for Q4_K / Q6_K weights   (one block per 256-element super-block)
// x[i] ≈ d · qs[i] with d = max|x| / 127 over the block; the error this adds
// to a dot product is at most Σ|w_i| · d / 2 (the kernel tests use this bound).
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/ggml_type.h"
#include "engine/kernels/blocks.h"
#include "engine/kernels/kernels.h"

namespace cllm::engine::simd {

struct ActQ8_32 {
  float d;
  int32_t sum;  // Σ qs (for weights stored with an offset, e.g. Q4_0's −8)
  int8_t qs[32];
};
static_assert(sizeof(ActQ8_32) == 40);

struct ActQ8_256 {
  float d;
  int16_t bsums[16];  // Σ qs over each group of 16 (Q4_K mins, Q6_K's −32)
  int8_t qs[256];
};
static_assert(sizeof(ActQ8_256) == 292);

enum class ActFormat { kNone, kQ8_32, kQ8_256 };

// ActFormatFor is the activation format the SIMD kernels use with `type`
// weights (kNone: fp32 activations, or no SIMD kernel).
ActFormat ActFormatFor(GgmlType type);

// QuantizeActRow rounds n floats (n a multiple of the block) into blocks.
void QuantizeActRow(ActFormat f, const float* x, int64_t n, void* out);
size_t ActRowBytes(ActFormat f, int64_t n);

// DecodeTuning: how the group kernels read the weights in a decode step (at
// most kTokenTile tokens: each weight streamed from memory once), tuned per
// CPU; every choice gives the same bits.
enum class DecodeTuning : uint8_t {
  // Zen 4 (performance.md §16, §17): batches of 3–8 tokens prefetch (Q8_0
  // 26 KB ahead into L2, K-quants the next super-block into L1); 1–2 tokens
  // do not (slower with it); K-quant batches run on 8 lanes, one group.
  kAmd,
  // The Intel Xeon (§23, §24): every step prefetches, the K-quants also 24 KB
  // ahead into L2; K-quant batches of 3–8 run on 16 lanes, group pairs.
  kIntel,
};

// One MatMul as the per-ISA kernels see it.
struct MatMulJob {
  GgmlType type;
  const uint8_t* w;   // [n_rows] rows of row_bytes
  size_t row_bytes;
  int64_t n_rows, n_cols, n_tokens;
  const float* x;     // [n_tokens, n_cols] fp32
  const uint8_t* xq;  // [n_tokens] rows of xq_row_bytes quantized activations
  size_t xq_row_bytes;
  float* out;         // [n_tokens, n_rows]
  DecodeTuning tuning = DecodeTuning::kAmd;
  // The weights were just read by the tile kernel (an AMX prefill's last
  // n_tokens % 16 tokens): computed like a prefill, not a decode step.
  bool weights_in_cache = false;
};

// DecodeTuningForCpu: kIntel on an Intel CPU (the CPUID vendor string,
// checked once), otherwise kAmd — or the one SetDecodeTuning set.
DecodeTuning DecodeTuningForCpu();
// SetDecodeTuning overrides the CPU's choice (tests, benchmarks: every
// tuning runs on every x86 CPU, with the same bits); ResetDecodeTuning
// restores it.
void SetDecodeTuning(DecodeTuning tuning);
void ResetDecodeTuning();

// MatMulReferenceRows is the scalar reference MatMul restricted to output
// rows [r0, r1) (matmul.cc).
void MatMulReferenceRows(GgmlType type, const void* w, int64_t n_rows, int64_t n_cols, const float* x,
                         int64_t n_tokens, float* out, int64_t r0, int64_t r1);

// BlockQ8_0x16 is one block of kQ8_0x16 (kernels.h): a 16-row unit's blocks
// for the same 32 columns.
struct BlockQ8_0x16 {
  uint16_t d[16];
  uint8_t qs[512];  // [k = 0..7][row = 0..15][4 bytes], each q XOR 0x80
};
static_assert(sizeof(BlockQ8_0x16) == 16 * 34);

// BlockQ4_Kx8 is one group-of-8-rows super-block of kQ4_Kx8 (kernels.h).
struct BlockQ4_Kx8 {
  uint16_t d[8];
  uint16_t dmin[8];
  uint8_t sc_lo[32];
  uint8_t m_lo[32];
  uint8_t hi[32];
  uint8_t qs[1024];  // [j = 0..7][k = 0..3][row = 0..7][4 nibble pairs]
};
static_assert(sizeof(BlockQ4_Kx8) == 8 * 144);

// PackQ4_Kx8 writes 8 rows' Q4_K super-blocks (rows[r], the same column
// range) as one BlockQ4_Kx8; UnpackQ4_Kx8Row writes row r of a kQ4_Kx8
// matrix back as the file's Q4_K blocks (n_cols / 256 of them), bit-exact.
void PackQ4_Kx8(const BlockQ4_K* const* rows, BlockQ4_Kx8* out);
void UnpackQ4_Kx8Row(const void* w, int64_t r, int64_t n_cols, BlockQ4_K* out);

// BlockQ6_Kx8 is one group-of-8-rows super-block of kQ6_Kx8 (kernels.h).
struct BlockQ6_Kx8 {
  uint16_t d[8];
  int8_t scales[128];  // [sub-block][row]
  uint8_t q[1536];     // [J = 0..7] 192 bytes each: ql [k = 0..3][row][4 nibble pairs],
                       // then qh [m = 0, 1][row][4 bytes of 2-bit fields] (one stream)
};
static_assert(sizeof(BlockQ6_Kx8) == 8 * 210);

// PackQ6_Kx8 / UnpackQ6_Kx8Row: as PackQ4_Kx8 / UnpackQ4_Kx8Row, for Q6_K.
void PackQ6_Kx8(const BlockQ6_K* const* rows, BlockQ6_Kx8* out);
void UnpackQ6_Kx8Row(const void* w, int64_t r, int64_t n_cols, BlockQ6_K* out);

// UnpackQ8_0x16Row writes row r of a kQ8_0x16 matrix `w` (n_cols columns) as
// the file's Q8_0 blocks (n_cols / 32 of them) to out.
void UnpackQ8_0x16Row(const void* w, int64_t r, int64_t n_cols, BlockQ8_0* out);

// ThreadScratch returns this thread's scratch buffer, at least `bytes` long
// and 64-byte aligned, valid until the thread's next call (dispatch.cc: the
// per-ISA kernel files keep std templates out, see x86_kernels.inc).
uint8_t* ThreadScratch(size_t bytes);

// Each returns false when it has no kernel for job.type (the caller then
// uses the scalar reference); otherwise fills out rows [r0, r1) for every token.
bool Avx2MatMulRows(const MatMulJob& job, int64_t r0, int64_t r1);
bool Avx512MatMulRows(const MatMulJob& job, int64_t r0, int64_t r1);
bool AmxMatMulRows(const MatMulJob& job, int64_t r0, int64_t r1);

// AVX2 row helpers (avx2.cc; AVX-512 machines use them too).
void Avx2F16ToF32Row(const uint16_t* src, float* dst, int64_t n);
float Avx2DotF32(const float* a, const float* b, int64_t n);
void Avx2AxpyF32(float a, const float* x, float* y, int64_t n);
void Avx2F32ToF16Row(const float* src, uint16_t* dst, int64_t n);
void Avx2SoftmaxRow(float* x, int64_t n);
// Avx2QuantizeActRow is QuantizeActRow with AVX2: the same bytes.
void Avx2QuantizeActRow(ActFormat f, const float* x, int64_t n, void* out);
void Avx2AttendHead(const float* q, const KvRows& k, const KvRows& v, int64_t len, int64_t hd, float scale,
                    float* scores, float* out);
void Avx2SwiGluRow(const float* gate, const float* up, int64_t n, float* out);
// AttendHeads with AVX2 (16 registers) or AVX-512 VL (32: larger tiles);
// both give AttendHead's bits per query.
void Avx2AttendHeads(const AttnQuery* qs, int64_t n, const KvRows& k, const KvRows& v, int64_t hd, float scale,
                     float* scores);
void Avx512AttendHeads(const AttnQuery* qs, int64_t n, const KvRows& k, const KvRows& v, int64_t hd, float scale,
                       float* scores);

// Whether the per-ISA files were compiled in (x86-64 builds).
bool Avx2Compiled();
bool Avx512Compiled();
bool AmxCompiled();

}  // namespace cllm::engine::simd
