// AMX kernels: the AVX-512 VNNI kernels (x86_kernels.inc, compiled again
// here) with the prefill tiles of kQ4_Kx8 — 16 tokens × 16 rows — on the
// tile unit (x86_amx_kernels.inc), the same bits per output.
// Compiled with the AVX-512 flags plus -mamx-tile -mamx-int8; the dispatcher
// calls it only when the CPU has AMX-INT8 and the kernel let this process
// use the tile state (arch_prctl ARCH_REQ_XCOMP_PERM).
#include "engine/kernels/simd_internal.h"

#if defined(__x86_64__) && defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AMX_INT8__)
#define CLLM_ISA_NS amx
#define CLLM_VNNI 1
#define CLLM_AMX 1
#include "engine/kernels/x86_kernels.inc"

namespace cllm::engine::simd {
bool AmxMatMulRows(const MatMulJob& job, int64_t r0, int64_t r1) { return amx::MatMulRows(job, r0, r1); }
bool AmxCompiled() { return true; }
}  // namespace cllm::engine::simd
#else
namespace cllm::engine::simd {
bool AmxMatMulRows(const MatMulJob&, int64_t, int64_t) { return false; }
bool AmxCompiled() { return false; }
}  // namespace cllm::engine::simd
#endif
