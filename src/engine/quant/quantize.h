// quantize.h — float rows into ggml block formats, bit-compatible with ggml.
//
// These follow ggml's reference ("_ref") quantizers, which llama-quantize
// uses when no importance matrix is given: same scale choice, same rounding
// (round-half-to-even via the 1.5·2^23 trick, truncating casts where ggml
// truncates), same block packing as blocks.h. DequantizeRow (kernels.h) is
// their inverse and the specification of the layouts.
#pragma once

#include <cstdint>

#include "engine/ggml_type.h"

namespace cllm::engine {

// CanQuantize reports whether QuantizeRow supports `type`:
// F32, F16, BF16, Q4_0, Q5_0, Q8_0, Q4_K, Q6_K.
bool CanQuantize(GgmlType type);

// QuantizeRow writes `n` elements of `src` in `type` to `dst`
// (RowSizeBytes(type, n) bytes). `n` must be a multiple of the type's block
// size and the type one CanQuantize accepts (checked: our invariant).
void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n);

// QuantizeRows quantizes `n_rows` rows of `n_cols` (src: [n_rows, n_cols]
// fp32; dst: n_rows × RowSizeBytes) on up to `n_threads` threads. Rows are
// independent, so the bytes do not depend on the thread count.
void QuantizeRows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_cols, int n_threads);

// DefaultQuantThreads is the machine's hardware concurrency (at least 1).
int DefaultQuantThreads();

namespace quant_internal {
// NearestInt rounds half to even exactly as ggml's nearest_int (|x| < 2^22).
int NearestInt(float x);
void QuantizeQ4_K(const float* x, void* dst, int64_t n_blocks);
void QuantizeQ6_K(const float* x, void* dst, int64_t n_blocks);
}  // namespace quant_internal

}  // namespace cllm::engine
