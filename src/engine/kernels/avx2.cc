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
void Avx2F16ToF32Row(const uint16_t* src, float* dst, int64_t n) { avx2::F16ToF32Row(src, dst, n); }
float Avx2DotF32(const float* a, const float* b, int64_t n) { return avx2::DotF32(a, b, n); }
void Avx2AxpyF32(float a, const float* x, float* y, int64_t n) { avx2::AxpyF32(a, x, y, n); }
void Avx2F32ToF16Row(const float* src, uint16_t* dst, int64_t n) { avx2::F32ToF16Row(src, dst, n); }
void Avx2SoftmaxRow(float* x, int64_t n) { avx2::SoftmaxRow(x, n); }
void Avx2QuantizeActRow(ActFormat f, const float* x, int64_t n, void* out) { avx2::QuantizeActRow(f, x, n, out); }
void Avx2AttendHead(const float* q, const KvRows& k, const KvRows& v, int64_t len, int64_t hd, float scale,
                    float* scores, float* out) {
  avx2::AttendHead(q, k, v, len, hd, scale, scores, out);
}
void Avx2SwiGluRow(const float* gate, const float* up, int64_t n, float* out) { avx2::SwiGluRow(gate, up, n, out); }
void Avx2AttendHeads(const AttnQuery* qs, int64_t n, const KvRows& k, const KvRows& v, int64_t hd, float scale,
                     float* scores) {
  avx2::AttendHeads(qs, n, k, v, hd, scale, scores);
}
}  // namespace cllm::engine::simd
#else
namespace cllm::engine::simd {
bool Avx2MatMulRows(const MatMulJob&, int64_t, int64_t) { return false; }
bool Avx2Compiled() { return false; }
void Avx2F16ToF32Row(const uint16_t*, float*, int64_t) {}
float Avx2DotF32(const float*, const float*, int64_t) { return 0.0f; }
void Avx2AxpyF32(float, const float*, float*, int64_t) {}
void Avx2F32ToF16Row(const float*, uint16_t*, int64_t) {}
void Avx2SoftmaxRow(float*, int64_t) {}
void Avx2QuantizeActRow(ActFormat f, const float* x, int64_t n, void* out) { QuantizeActRow(f, x, n, out); }
void Avx2AttendHead(const float*, const KvRows&, const KvRows&, int64_t, int64_t, float, float*, float*) {}
void Avx2SwiGluRow(const float*, const float*, int64_t, float*) {}
void Avx2AttendHeads(const AttnQuery*, int64_t, const KvRows&, const KvRows&, int64_t, float, float*) {}
}  // namespace cllm::engine::simd
#endif
