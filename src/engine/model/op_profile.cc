#include "engine/model/op_profile.h"

#include <cstdlib>
#include <cstring>

namespace cllm::engine {
namespace {

std::atomic<bool>& Enabled() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("CLLM_PROFILE");
    return env != nullptr && std::strcmp(env, "1") == 0;
  }()};
  return on;
}

// Counters: nanoseconds and calls per op. Forward runs ops from the thread
// that called it, but several threads may call Forward (tests), so atomics.
std::array<std::atomic<int64_t>, kNumOps> g_ns{};
std::array<std::atomic<int64_t>, kNumOps> g_calls{};

}  // namespace

const char* OpName(Op op) {
  switch (op) {
    case Op::kEmbed: return "embedding";
    case Op::kNorm: return "rmsnorm";
    case Op::kMatMulQkv: return "matmul qkv";
    case Op::kQkNormRope: return "qk-norm + rope";
    case Op::kKvStore: return "kv store";
    case Op::kAttention: return "attention";
    case Op::kMatMulO: return "matmul o";
    case Op::kMatMulGateUp: return "matmul gate+up";
    case Op::kSwiGlu: return "swiglu";
    case Op::kMatMulDown: return "matmul down";
    case Op::kResidual: return "residual/bias";
    case Op::kOutput: return "matmul output";
    case Op::kCount: break;
  }
  return "?";
}

double OpProfile::TotalSeconds() const {
  double s = 0;
  for (double v : seconds) s += v;
  return s;
}

void EnableOpProfile(bool on) { Enabled().store(on, std::memory_order_relaxed); }
bool OpProfileEnabled() { return Enabled().load(std::memory_order_relaxed); }

void ResetOpProfile() {
  for (int i = 0; i < kNumOps; ++i) {
    g_ns[i].store(0, std::memory_order_relaxed);
    g_calls[i].store(0, std::memory_order_relaxed);
  }
}

OpProfile TakeOpProfile() {
  OpProfile p;
  for (int i = 0; i < kNumOps; ++i) {
    p.seconds[i] = static_cast<double>(g_ns[i].load(std::memory_order_relaxed)) * 1e-9;
    p.calls[i] = g_calls[i].load(std::memory_order_relaxed);
  }
  return p;
}

void AddOpTime(Op op, int64_t ns) {
  const int i = static_cast<int>(op);
  g_ns[i].fetch_add(ns, std::memory_order_relaxed);
  g_calls[i].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace cllm::engine
