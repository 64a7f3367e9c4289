#include "engine/serve/step_pacer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cllm::engine {
namespace {

constexpr double kAlpha = 0.25;  // weight of the newest observation
constexpr int kUnlimited = std::numeric_limits<int>::max();

double Average(double old, double sample) { return old == 0 ? sample : old + kAlpha * (sample - old); }

}  // namespace

StepPacer::StepPacer(double stall_factor, int probe_tokens)
    : factor_(stall_factor), probe_(std::max(1, probe_tokens)) {}

int StepPacer::Allowance(int decoders) {
  if (!(factor_ > 1) || decoders <= 0) return kUnlimited;
  if (decode_s_ > 0 && mixed_ >= kRefreshSteps - 1) return 0;
  int n = probe_;
  if (decode_s_ > 0 && token_s_ > 0) {
    const double fit = (factor_ - 1) * decode_s_ / token_s_;
    n = fit >= 1e9 ? 1'000'000'000 : std::max(1, static_cast<int>(fit));
    // Grow at most twofold per step: a cheap-looking step (small chunks ride
    // along with the decodes almost free) must not lead to one huge chunk.
    if (last_ > 0) n = std::min(n, 2 * last_);
  }
  last_ = n;
  return n;
}

void StepPacer::Observe(int decoders, int prompt_tokens, double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return;
  if (prompt_tokens <= 0) {
    if (decoders > 0) {
      decode_s_ = Average(decode_s_, seconds);
      mixed_ = 0;
    }
    return;
  }
  if (decoders > 0) ++mixed_;
  if (decoders <= 0) {
    // A prefill-only step: an upper estimate of a prompt token's marginal
    // time, used until a mixed step has been timed.
    if (token_s_ == 0) token_s_ = seconds / prompt_tokens;
    return;
  }
  if (decode_s_ == 0) return;  // nothing to take the decodes' share from yet
  // Noise can make a mixed step look no dearer than a decode-only one; count
  // at least a tenth of the step as the prompt's, so the estimate stays > 0.
  const double marginal = std::max(seconds - decode_s_, 0.1 * seconds) / prompt_tokens;
  token_s_ = Average(token_s_, marginal);
}

}  // namespace cllm::engine
