// kernels.h — tensor element types and the row kernels every model uses.
//
// The scalar implementations here are the specification: every faster
// (SIMD, threaded) path added later must match them within a stated tolerance
// at odd sizes. Model code only calls this interface, so speed work never
// touches model code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/ggml_type.h"

namespace cllm::engine {

// The instruction sets the kernels are built for (see "Instruction sets" below).
// kAmx is kAvx512 with a prefill's Q4_K matrix products on AMX tiles (Intel
// Xeon since Sapphire Rapids): the same bits as kAvx512.
enum class Isa { kScalar, kAvx2, kAvx512, kAmx };

struct TypeTraits {
  const char* name;     // "q4_K", as GGUF tools print it
  int64_t block_size;   // elements per block (1 for F32/F16/BF16)
  size_t type_size;     // bytes per block
  bool supported;       // whether this engine can compute with it
};

// GetTypeTraits returns the traits of `type`, or nullptr for an id that is not
// a known ggml type.
const TypeTraits* GetTypeTraits(GgmlType type);
// GetTypeTraitsById is GetTypeTraits for a raw id read from a file.
const TypeTraits* GetTypeTraitsById(uint32_t id);

// RowSizeBytes returns the bytes of a row of `n` elements; `n` must be a
// multiple of the block size (the GGUF reader checks this for file input).
size_t RowSizeBytes(GgmlType type, int64_t n);

// fp16 / bf16 conversions (IEEE 754 binary16 round-to-nearest-even).
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
float Bf16ToF32(uint16_t h);
uint16_t F32ToBf16(float f);

// F16ToF32Row converts n halves, exactly as F16ToF32 does, with F16C when
// the active instruction set has it (KV cache loads).
void F16ToF32Row(const uint16_t* src, float* dst, int64_t n);

// F32ToF16Row converts n floats exactly as F32ToF16 does (round to nearest
// even; a NaN becomes the same quiet NaN), with F16C when available
// (KV cache stores).
void F32ToF16Row(const float* src, uint16_t* dst, int64_t n);

// SoftmaxRow replaces x[0..n) by exp(x − max) / Σ exp(x − max) (attention).
// SwiGluRow sets out[i] = silu(gate[i]) · up[i] = gate / (1 + exp(−gate)) · up
// (out may be gate: each element is read before it is written).
// Isa::kScalar uses std::exp (and a double sum for softmax): the reference.
// The SIMD versions use a polynomial exp (input clamped to [-87, 88]; the
// tests hold them within 2e-6 relative of the scalar path) and fp32 sums. Each output depends on its own row only.
void SoftmaxRow(float* x, int64_t n);
void SwiGluRow(const float* gate, const float* up, int64_t n, float* out);

// KvRows is one KV head's keys (or values) at positions [0, len) where they
// sit, without a copy: position p's hd elements start at
//   blocks[p / block_size] + (p % block_size) · stride     (elements)
// as fp32 (f16 = false) or IEEE binary16 (f16 = true). The KV cache keeps
// positions in blocks of 32; a contiguous [len, hd] array is one block.
struct KvRows {
  const void* const* blocks;
  int64_t block_size;
  int64_t stride;
  bool f16;
};

// AttendHead is one query head's attention over `len` positions:
//   scores[p] = (q · k[p]) · scale;  softmax over scores;  out = Σ_p scores[p] · v[p]
//   q [hd], k and v `len` rows of hd (KvRows), scores [len] (scratch, left
//   holding the probabilities), out [hd].
// Isa::kScalar is the reference (DotF32, SoftmaxRow, AxpyF32 in that order,
// F16 rows converted first).
// SIMD: q·k for 8 positions per pass over q, the output kept in registers
// across positions; F16 rows are converted in registers (exactly), so a
// result does not depend on whether the rows were F16 or their F32 copies,
// nor on the block layout; each score and output element has one fixed
// instruction sequence, whatever len or the caller's batch.
void AttendHead(const float* q, const KvRows& k, const KvRows& v, int64_t len, int64_t hd, float scale,
                float* scores, float* out);
// AttendHeads is AttendHead for n queries over the same keys and values
// (the query heads of one KV head, a prefill's entries of one sequence):
// query i attends positions [0, qs[i].len) and writes qs[i].out [hd].
// `scores` is scratch of n × max(len) floats. Each query's output has
// exactly the bits AttendHead gives it alone (same ISA); the SIMD kernels
// load each key and value row once per tile of up to 4 queries.
struct AttnQuery {
  const float* q;
  int64_t len;
  float* out;
};
void AttendHeads(const AttnQuery* qs, int64_t n, const KvRows& k, const KvRows& v, int64_t hd, float scale,
                 float* scores);
// The same over contiguous fp32 rows k [len, hd], v [len, hd].
void AttendHead(const float* q, const float* k, const float* v, int64_t len, int64_t hd, float scale,
                float* scores, float* out);

// DotF32 returns Σ a[i]·b[i]; AxpyF32 sets y[i] += a·x[i] (attention). With
// Isa::kScalar DotF32 accumulates in double; SIMD sums in fp32, differing
// only by rounding order (~1e-7 relative).
float DotF32(const float* a, const float* b, int64_t n);
void AxpyF32(float a, const float* x, float* y, int64_t n);

// DequantizeRow expands `n` elements of `type` at `src` into floats.
void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

// DotRow returns Σ row[i]·x[i] over `n` elements, `row` in `type`, x in fp32.
float DotRow(GgmlType type, const void* row, const float* x, int64_t n);

// MatMul computes out[t][r] = Σ_c w[r][c] · x[t][c] for a weight matrix in
// `type` with `n_rows` rows of `n_cols` elements (row stride RowSizeBytes),
//   x   : [n_tokens, n_cols]  fp32, row-major
//   out : [n_tokens, n_rows]  fp32, row-major
// MatMul runs on the engine thread pool (thread_pool.h) with the active
// instruction set's kernels. The SIMD kernels round activations to 8-bit
// blocks for quantized weights (Q8_0, Q4_0, Q4_K, Q6_K), like llama.cpp;
// other types, and Isa::kScalar, use the scalar reference (fp32 activations,
// double accumulation). Each output element depends only on its weight row
// and its token's activations: never on n_tokens, the batch or the threads.
void MatMul(GgmlType type, const void* w, int64_t n_rows, int64_t n_cols, const float* x,
            int64_t n_tokens, float* out);

// MatMulSpec is one weight matrix of a MatMulGroup and its output
// out [n_tokens, n_rows].
struct MatMulSpec {
  GgmlType type;
  const void* w;
  int64_t n_rows;
  float* out;
};

// MatMulGroup is MatMul for up to 8 matrices with the same input x
// [n_tokens, n_cols] (q/k/v, gate/up): when their kernels read the same
// activation format, the activations are rounded once and all rows are one
// pool job. Every output element is bit-identical to a separate MatMul.
void MatMulGroup(const MatMulSpec* specs, int n_specs, int64_t n_cols, const float* x, int64_t n_tokens);

// ---------------------------------------------------------------------------
// Weight layouts made at load time
// ---------------------------------------------------------------------------

// kQ8_0x16 is Q8_0 with rows interleaved in units of 16 (two groups of 8,
// "halves": rows 16p + 8h + row); never read from a file (GetTypeTraitsById
// does not know it). Per unit and block of 32 columns, 544 bytes — the size
// of the 16 rows' blocks it replaces:
//   d[16]     the 16 rows' fp16 scales
//   qs[512]   for each 4-column step k = 0..7, the 16 rows' 4 bytes, each
//             stored as q + 128 (q XOR 0x80, unsigned)
// so one vpdpbusd multiplies 8 or 16 rows by 4 activation bytes broadcast,
// the float scaling is one vector operation for them (lanes are rows), a
// unit's 16 rows are one contiguous stream of memory, and a block's qs is
// exactly an AMX B tile (8 rows of 64 bytes) for the 16 rows.
inline constexpr GgmlType kQ8_0x16 = static_cast<GgmlType>(0x110);

// kQ4_Kx8 is Q4_K with rows interleaved in groups of 8 (same size: 1152 bytes
// per group of 8 rows and super-block of 256 columns):
//   d[8], dmin[8]   the 8 rows' fp16 super-block scales
//   sc_lo[32], m_lo[32], hi[32]
//                   the 64 six-bit scales and 64 mins, index i = 8·j + row
//                   (j the sub-block): byte b's low nibble holds i = b, its
//                   high nibble i = b + 32; hi[b] holds the top 2 bits of
//                   scale b, scale b + 32, min b, min b + 32 (bits 0-1 … 6-7)
//   qs[1024]        for sub-block j and 4-column step k = 0..3, the 8 rows'
//                   4 nibble pairs: low nibble column 32j + 4k + b, high
//                   nibble column 32j + 16 + 4k + b
// so one vpdpbusd multiplies 8 rows by 4 activation bytes broadcast, and the
// scales become one vector per sub-block with a few shifts and masks.
inline constexpr GgmlType kQ4_Kx8 = static_cast<GgmlType>(0x10C);

// kQ6_Kx8 is Q6_K with rows interleaved in groups of 8 (same size: 1680
// bytes per group and super-block); q is the unsigned 6-bit value (0..63):
//   d[8]            the rows' fp16 scales
//   scales[16][8]   sub-block (16 columns) scale of each row, int8
//   q[1536]         for each 32 columns J, 192 bytes (read as one stream):
//     ql[128]       low 4 bits, laid out as kQ4_Kx8's qs: for 4-column step
//                   k, 8 rows × 4 bytes, low nibble column 32J + 4k + b,
//                   high nibble 32J + 16 + 4k + b
//     qh[64]        top 2 bits: for m = 0, 1, 8 rows × 4 bytes whose bits
//                   0-1 / 2-3 / 4-5 / 6-7 go with ql's (k = 2m, low) /
//                   (2m, high) / (2m + 1, low) / (2m + 1, high) nibble
inline constexpr GgmlType kQ6_Kx8 = static_cast<GgmlType>(0x10E);

// PackedLayoutFor is the layout MatMul on `isa` is fastest with for `type`
// weights of n_rows rows on AVX-512 VNNI: kQ8_0x16 for Q8_0 when n_rows is a
// multiple of 16, kQ4_Kx8 for Q4_K and kQ6_Kx8 for Q6_K when it is a
// multiple of 8; otherwise `type`
// (keep the file's rows).
GgmlType PackedLayoutFor(Isa isa, GgmlType type, int64_t n_rows);
// PackRows writes n_rows rows of `type` (src, as in the file) in layout `to`
// (from PackedLayoutFor) to dst, RowSizeBytes(type, n_cols) · n_rows bytes.
void PackRows(GgmlType type, GgmlType to, const void* src, int64_t n_rows, int64_t n_cols, void* dst);
// FileTypeOf is the file type a load-time layout holds (`type` itself for a
// file type).
GgmlType FileTypeOf(GgmlType type);
// UnpackRow writes row r of a matrix `w` in `type` (a file type or a
// load-time layout) as the file's bytes, RowSizeBytes(FileTypeOf(type),
// n_cols) of them, to dst, bit-exact; UnpackRows does rows [0, n_rows)
// (PackRows' inverse).
void UnpackRow(GgmlType type, const void* w, int64_t r, int64_t n_cols, void* dst);
void UnpackRows(GgmlType type, const void* src, int64_t n_rows, int64_t n_cols, void* dst);
// DequantizeMatrixRow expands row r of a matrix `w` of `type` (a file type
// or a load-time layout) with n_cols columns: embedding lookups.
void DequantizeMatrixRow(GgmlType type, const void* w, int64_t r, int64_t n_cols, float* dst);

// ---------------------------------------------------------------------------
// Instruction sets
// ---------------------------------------------------------------------------

// IsaName returns "scalar", "avx2", "avx512" or "amx".
const char* IsaName(Isa isa);
// IsaAvailable says whether `isa`'s kernels are compiled in and this CPU
// runs them (CPUID, checked once; for kAmx also the kernel's permission to
// use the tile state, asked for once: Linux ≥ 5.16).
bool IsaAvailable(Isa isa);
// AvailableIsas lists the available instruction sets, scalar first.
std::vector<Isa> AvailableIsas();
// ActiveIsa is the instruction set MatMul uses: chosen once at first use,
// the best available, or CLLM_KERNELS=scalar|avx2|avx512|amx when that one is
// available (an unavailable or unknown name falls back to the best).
Isa ActiveIsa();
// SetActiveIsa overrides it (tests, benchmarks); `isa` must be available.
void SetActiveIsa(Isa isa);

// MatMulWith / MatMulGroupWith take an explicit instruction set (must be available).
void MatMulWith(Isa isa, GgmlType type, const void* w, int64_t n_rows, int64_t n_cols, const float* x,
                int64_t n_tokens, float* out);
void MatMulGroupWith(Isa isa, const MatMulSpec* specs, int n_specs, int64_t n_cols, const float* x,
                     int64_t n_tokens);

}  // namespace cllm::engine
