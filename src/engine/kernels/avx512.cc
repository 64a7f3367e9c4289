// AVX-512 (F, BW, VL, VNNI) kernels: the AVX2 loops with the integer dot
// products done by VNNI (vpdpbusd for Q8_0 / Q4_0; vpmaddubsw + vpdpwssd,
// which scales and accumulates in one instruction, for Q4_K / Q6_K), mostly
// on 256-bit registers; the interleaved-row kernels of a prefill run two
// 8-row groups at once on 512-bit ones (x86_group_kernels.inc).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (+ AVX2 flags);
// the dispatcher calls it only when the CPU has them.
#include "engine/kernels/simd_internal.h"

#if defined(__x86_64__) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define CLLM_ISA_NS avx512
#define CLLM_VNNI 1
#include "engine/kernels/x86_kernels.inc"

namespace cllm::engine::simd {
bool Avx512MatMulRows(const MatMulJob& job, int64_t r0, int64_t r1) { return avx512::MatMulRows(job, r0, r1); }
bool Avx512Compiled() { return true; }
void Avx512AttendHeads(const AttnQuery* qs, int64_t n, const KvRows& k, const KvRows& v, int64_t hd, float scale,
                       float* scores) {
  avx512::AttendHeads(qs, n, k, v, hd, scale, scores);
}
}  // namespace cllm::engine::simd
#else
namespace cllm::engine::simd {
bool Avx512MatMulRows(const MatMulJob&, int64_t, int64_t) { return false; }
bool Avx512Compiled() { return false; }
void Avx512AttendHeads(const AttnQuery*, int64_t, const KvRows&, const KvRows&, int64_t, float, float*) {}
}  // namespace cllm::engine::simd
#endif
