// op_profile.h — wall-clock time per operation of the forward pass.
//
// Off by default (one relaxed atomic load per timed op). When enabled
// (`cllm bench model --profile`, or CLLM_PROFILE=1 at start-up), Forward adds
// the time of each operation kind to process-wide counters; a caller resets
// them, runs what it wants to measure and takes a snapshot. Timing is wall
// clock around the whole op as the caller sees it (a matmul includes its
// activation rounding and the pool's hand-out and join).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace cllm::engine {

enum class Op {
  kEmbed,       // token embedding rows → fp32
  kNorm,        // RMSNorm before attention, FFN and the output
  kMatMulQkv,   // q, k, v projections
  kQkNormRope,  // per-head QK-norm and rotary embedding
  kKvStore,     // K and V into the cache (F16 conversion)
  kAttention,   // KV loads, q·k, softmax, Σ p·v
  kMatMulO,     // attention output projection
  kMatMulGateUp,
  kSwiGlu,
  kMatMulDown,
  kResidual,    // residual additions, biases
  kOutput,      // output projection (logits)
  kCount
};
constexpr int kNumOps = static_cast<int>(Op::kCount);

// OpName returns a short name ("matmul qkv").
const char* OpName(Op op);

struct OpProfile {
  std::array<double, kNumOps> seconds{};
  std::array<int64_t, kNumOps> calls{};
  double TotalSeconds() const;
};

// EnableOpProfile switches timing on or off (initially: CLLM_PROFILE=1).
void EnableOpProfile(bool on);
bool OpProfileEnabled();
// ResetOpProfile zeroes the counters; TakeOpProfile reads them.
void ResetOpProfile();
OpProfile TakeOpProfile();

// AddOpTime adds `ns` nanoseconds to `op` (used by OpTimer).
void AddOpTime(Op op, int64_t ns);

// OpTimer times its scope as `op` when profiling is enabled.
class OpTimer {
 public:
  explicit OpTimer(Op op) : op_(op), on_(OpProfileEnabled()) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() {
    if (on_) {
      AddOpTime(op_, std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_)
                         .count());
    }
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  Op op_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace cllm::engine
