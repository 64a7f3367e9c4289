// AVX2 + FMA + F16C kernels (this file is compiled with -mavx2 -mfma -mf16c;
// the dispatcher calls it only when the CPU has them).
#include "engine/kernels/simd_internal.h"

#if defined(__x86_64__) && defined(__AVX2__)
#define CLLM_ISA_NS avx2
#define CLLM_VNNI 0
#include "engine/kernels/x86_kernels.inc"

namespace cllm::engine::simd {
bool Avx2MatMulRows(const MatMulJob& job, int64_t r0, int64_t r1) { return avx2::MatMulRows(job, r0, r1); }
bool Avx2Compiled() { return true; }
}  // namespace cllm::engine::simd
#else
namespace cllm::engine::simd {
bool Avx2MatMulRows(const MatMulJob&, int64_t, int64_t) { return false; }
bool Avx2Compiled() { return false; }
}  // namespace cllm::engine::simd
#endif
