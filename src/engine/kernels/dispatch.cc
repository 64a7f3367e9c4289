// MatMul: instruction-set choice (once, from CPUID and CLLM_KERNELS),
// activation rounding, and the split of output rows over the thread pool.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "base/check.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/simd_internal.h"
#include "engine/kernels/thread_pool.h"

namespace cllm::engine {
namespace {

#if defined(__x86_64__)
// F16C straight from CPUID leaf 1 (ECX bit 29): clang 14's
// __builtin_cpu_supports does not know "f16c". AVX state support by the OS
// is covered by the "avx2" check.
bool CpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}
#endif

#if defined(__x86_64__)
// AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and 25), and Linux's
// permission for this process to use the tile data state (XTILEDATA,
// feature 18): asked for once with arch_prctl(ARCH_REQ_XCOMP_PERM); a kernel
// or hypervisor that does not grant it leaves AMX unused.
bool CpuHasAmx() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  if ((edx & (1u << 24)) == 0 || (edx & (1u << 25)) == 0) return false;
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

bool CpuHas(Isa isa) {
#if defined(__x86_64__)
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
    case Isa::kAvx512:
      return CpuHas(Isa::kAvx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    case Isa::kAmx: return CpuHas(Isa::kAvx512) && CpuHasAmx();
  }
  return false;
#else
  return isa == Isa::kScalar;
#endif
}

Isa ChooseIsa() {
  Isa best = Isa::kScalar;
  for (Isa isa : AvailableIsas()) best = isa;  // listed in increasing order
  if (const char* env = std::getenv("CLLM_KERNELS")) {
    for (Isa isa : AvailableIsas()) {
      if (std::strcmp(env, IsaName(isa)) == 0) return isa;
    }
  }
  return best;
}

std::atomic<Isa>& ActiveSlot() {
  static std::atomic<Isa> slot{ChooseIsa()};
  return slot;
}

// Below this many multiply-adds a MatMul runs on the calling thread: waking
// the pool costs a few microseconds.
constexpr int64_t kMinParallelWork = 1 << 15;
// Row ranges handed to threads are multiples of this (the kernels' row chunk).
constexpr int64_t kRowGrain = 16;

void ForRows(int64_t n_rows, int64_t work, const std::function<void(int64_t, int64_t)>& fn) {
  if (work < kMinParallelWork) return fn(0, n_rows);
  ParallelFor(n_rows, kRowGrain, fn);
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

bool IsaAvailable(Isa isa) {
  static const bool avx2 = simd::Avx2Compiled() && CpuHas(Isa::kAvx2);
  static const bool avx512 = simd::Avx512Compiled() && CpuHas(Isa::kAvx512);
  static const bool amx = avx512 && simd::AmxCompiled() && CpuHas(Isa::kAmx);
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return avx2;
    case Isa::kAvx512: return avx512;
    case Isa::kAmx: return amx;
  }
  return false;
}

std::vector<Isa> AvailableIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (IsaAvailable(isa)) out.push_back(isa);
  }
  return out;
}

Isa ActiveIsa() { return ActiveSlot().load(std::memory_order_relaxed); }

void SetActiveIsa(Isa isa) {
  CLLM_CHECK(IsaAvailable(isa));
  ActiveSlot().store(isa, std::memory_order_relaxed);
}

void F16ToF32Row(const uint16_t* src, float* dst, int64_t n) {
  if (ActiveIsa() != Isa::kScalar) return simd::Avx2F16ToF32Row(src, dst, n);  // AVX-512 implies AVX2
  for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

void F32ToF16Row(const float* src, uint16_t* dst, int64_t n) {
  if (ActiveIsa() != Isa::kScalar) return simd::Avx2F32ToF16Row(src, dst, n);
  for (int64_t i = 0; i < n; ++i) dst[i] = F32ToF16(src[i]);
}

void SoftmaxRow(float* x, int64_t n) {
  if (n <= 0) return;
  if (ActiveIsa() != Isa::kScalar) return simd::Avx2SoftmaxRow(x, n);
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = std::max(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SwiGluRow(const float* gate, const float* up, int64_t n, float* out) {
  if (ActiveIsa() != Isa::kScalar) return simd::Avx2SwiGluRow(gate, up, n, out);
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

namespace {
// KvRow is position p's row of `rows` (scalar reference and the F32 copy).
const uint8_t* KvRow(const KvRows& rows, int64_t p) {
  const size_t elem = rows.f16 ? 2 : 4;
  return static_cast<const uint8_t*>(rows.blocks[p / rows.block_size]) +
         static_cast<size_t>((p % rows.block_size) * rows.stride) * elem;
}
void KvRowF32(const KvRows& rows, int64_t p, int64_t hd, float* dst) {
  const uint8_t* src = KvRow(rows, p);
  if (rows.f16) {
    for (int64_t i = 0; i < hd; ++i) dst[i] = F16ToF32(reinterpret_cast<const uint16_t*>(src)[i]);
  } else {
    std::memcpy(dst, src, static_cast<size_t>(hd) * sizeof(float));
  }
}
}  // namespace

void AttendHead(const float* q, const KvRows& k, const KvRows& v, int64_t len, int64_t hd, float scale,
                float* scores, float* out) {
  CLLM_CHECK(len >= 0 && hd >= 0 && k.block_size > 0 && v.block_size > 0);
  if (ActiveIsa() != Isa::kScalar) return simd::Avx2AttendHead(q, k, v, len, hd, scale, scores, out);
  std::vector<float> row(static_cast<size_t>(hd));
  for (int64_t p = 0; p < len; ++p) {
    KvRowF32(k, p, hd, row.data());
    scores[p] = DotF32(q, row.data(), hd) * scale;
  }
  SoftmaxRow(scores, len);
  std::fill(out, out + hd, 0.0f);
  for (int64_t p = 0; p < len; ++p) {
    KvRowF32(v, p, hd, row.data());
    AxpyF32(scores[p], row.data(), out, hd);
  }
}

void AttendHeads(const AttnQuery* qs, int64_t n, const KvRows& k, const KvRows& v, int64_t hd, float scale,
                 float* scores) {
  CLLM_CHECK(n >= 0 && hd >= 0 && k.block_size > 0 && v.block_size > 0);
  for (int64_t i = 0; i < n; ++i) CLLM_CHECK(qs[i].len >= 0);
  const Isa isa = ActiveIsa();
  if (isa >= Isa::kAvx512) return simd::Avx512AttendHeads(qs, n, k, v, hd, scale, scores);
  if (isa != Isa::kScalar) return simd::Avx2AttendHeads(qs, n, k, v, hd, scale, scores);
  for (int64_t i = 0; i < n; ++i) AttendHead(qs[i].q, k, v, qs[i].len, hd, scale, scores, qs[i].out);
}

void AttendHead(const float* q, const float* k, const float* v, int64_t len, int64_t hd, float scale,
                float* scores, float* out) {
  const void* kb = k;
  const void* vb = v;
  const int64_t block = len > 0 ? len : 1;
  AttendHead(q, KvRows{&kb, block, hd, false}, KvRows{&vb, block, hd, false}, len, hd, scale, scores, out);
}

float DotF32(const float* a, const float* b, int64_t n) {
  if (ActiveIsa() != Isa::kScalar) return simd::Avx2DotF32(a, b, n);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(acc);
}

void AxpyF32(float a, const float* x, float* y, int64_t n) {
  if (ActiveIsa() != Isa::kScalar) return simd::Avx2AxpyF32(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void MatMul(GgmlType type, const void* w, int64_t n_rows, int64_t n_cols, const float* x, int64_t n_tokens,
            float* out) {
  MatMulWith(ActiveIsa(), type, w, n_rows, n_cols, x, n_tokens, out);
}

void MatMulWith(Isa isa, GgmlType type, const void* w, int64_t n_rows, int64_t n_cols, const float* x,
                int64_t n_tokens, float* out) {
  const MatMulSpec spec{type, w, n_rows, out};
  MatMulGroupWith(isa, &spec, 1, n_cols, x, n_tokens);
}

void MatMulGroup(const MatMulSpec* specs, int n_specs, int64_t n_cols, const float* x, int64_t n_tokens) {
  MatMulGroupWith(ActiveIsa(), specs, n_specs, n_cols, x, n_tokens);
}

void MatMulGroupWith(Isa isa, const MatMulSpec* specs, int n_specs, int64_t n_cols, const float* x,
                     int64_t n_tokens) {
  CLLM_CHECK(n_specs >= 0 && n_cols >= 0 && n_tokens >= 0 && IsaAvailable(isa));
  if (n_specs == 0 || n_tokens == 0) return;
  auto has_kernel = [](GgmlType t) {
    return t == GgmlType::kF32 || t == GgmlType::kF16 || simd::ActFormatFor(t) != simd::ActFormat::kNone;
  };
  const simd::ActFormat fmt = simd::ActFormatFor(specs[0].type);
  bool fused = isa != Isa::kScalar;
  int64_t total_rows = 0;
  for (int m = 0; m < n_specs; ++m) {
    CLLM_CHECK(specs[m].n_rows >= 0);
    fused = fused && has_kernel(specs[m].type) && simd::ActFormatFor(specs[m].type) == fmt;
    total_rows += specs[m].n_rows;
  }
  if (!fused) {
    // The scalar reference, or matrices whose kernels read different
    // activation formats (no model mix we load): one MatMul each.
    for (int m = 0; m < n_specs; ++m) {
      const MatMulSpec& sp = specs[m];
      if (isa != Isa::kScalar && has_kernel(sp.type) && n_specs > 1) {
        MatMulWith(isa, sp.type, sp.w, sp.n_rows, n_cols, x, n_tokens, sp.out);
        continue;
      }
      ForRows(sp.n_rows, sp.n_rows * n_cols * n_tokens, [&](int64_t r0, int64_t r1) {
        simd::MatMulReferenceRows(sp.type, sp.w, sp.n_rows, n_cols, x, n_tokens, sp.out, r0, r1);
      });
    }
    return;
  }

  // Round each token's activations once; every weight row of every matrix reuses them.
  const size_t xq_row = simd::ActRowBytes(fmt, n_cols);
  thread_local std::vector<uint8_t> xq;  // [n_tokens][xq_row]
  xq.resize(xq_row * static_cast<size_t>(n_tokens));
  if (fmt != simd::ActFormat::kNone) {
    uint8_t* xq_data = xq.data();
    auto quantize = [&](int64_t t0, int64_t t1) {
      // SIMD rounding: the same bytes as simd::QuantizeActRow (tested).
      for (int64_t t = t0; t < t1; ++t) simd::Avx2QuantizeActRow(fmt, x + t * n_cols, n_cols, xq_data + t * xq_row);
    };
    if (n_tokens == 1) {
      quantize(0, 1);
    } else {
      ParallelFor(n_tokens, 1, quantize);
    }
  }
  // One job over the concatenated rows: a range is cut at matrix boundaries
  // and each piece computed exactly as a separate MatMul would.
  constexpr int kMaxSpecs = 8;
  CLLM_CHECK(n_specs <= kMaxSpecs);
  simd::MatMulJob jobs[kMaxSpecs];
  int64_t first_row[kMaxSpecs + 1];
  first_row[0] = 0;
  for (int m = 0; m < n_specs; ++m) {
    const MatMulSpec& sp = specs[m];
    jobs[m] = {sp.type, static_cast<const uint8_t*>(sp.w), RowSizeBytes(sp.type, n_cols), sp.n_rows, n_cols,
               n_tokens, x, xq.data(), xq_row, sp.out, simd::DecodeTuningForCpu()};
    first_row[m + 1] = first_row[m] + sp.n_rows;
  }
  auto rows = isa == Isa::kAmx      ? &simd::AmxMatMulRows
              : isa == Isa::kAvx512 ? &simd::Avx512MatMulRows
                                    : &simd::Avx2MatMulRows;
  ForRows(total_rows, total_rows * n_cols * n_tokens, [&](int64_t g0, int64_t g1) {
    for (int m = 0; m < n_specs; ++m) {
      const int64_t r0 = std::max(g0, first_row[m]) - first_row[m];
      const int64_t r1 = std::min(g1, first_row[m + 1]) - first_row[m];
      if (r0 >= r1) continue;
      if (!rows(jobs[m], r0, r1)) {
        simd::MatMulReferenceRows(specs[m].type, specs[m].w, specs[m].n_rows, n_cols, x, n_tokens, specs[m].out, r0, r1);
      }
    }
  });
}

namespace simd {
namespace {
std::atomic<int> g_decode_tuning{-1};  // -1: the CPU's
}  // namespace

void SetDecodeTuning(DecodeTuning tuning) { g_decode_tuning.store(static_cast<int>(tuning)); }
void ResetDecodeTuning() { g_decode_tuning.store(-1); }

DecodeTuning DecodeTuningForCpu() {
  const int forced = g_decode_tuning.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<DecodeTuning>(forced);
#if defined(__x86_64__)
  static const bool intel = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
    char vendor[12];
    std::memcpy(vendor, &ebx, 4);
    std::memcpy(vendor + 4, &edx, 4);
    std::memcpy(vendor + 8, &ecx, 4);
    return std::memcmp(vendor, "GenuineIntel", 12) == 0;
  }();
  return intel ? DecodeTuning::kIntel : DecodeTuning::kAmd;
#else
  return DecodeTuning::kAmd;
#endif
}

uint8_t* ThreadScratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 63) buf.resize(bytes + 63);
  const auto p = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - p % 64) % 64);
}
}  // namespace simd

}  // namespace cllm::engine
