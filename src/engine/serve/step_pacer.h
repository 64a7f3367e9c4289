// step_pacer.h — how many prompt tokens one scheduler step may prefill while
// other sequences are decoding.
//
// Every decoding sequence waits for the whole step, prefill chunks included:
// on a CPU a 256-token chunk of a long prompt costs tens of decode steps, so
// without a limit one user's long prompt stalls everyone else's stream for its
// whole prefill. The pacer keeps a step that carries prompt tokens within
// `stall_factor` × the time of a decode-only step: it learns that time and the
// marginal time of one prompt token from the steps it observes (moving
// averages) and gives the next step as many prompt tokens as fit. The price
// is paid by the long prompt, whose prefill runs in smaller pieces (docs/
// performance.md, "Long prompts beside running streams").
#pragma once

namespace cllm::engine {

class StepPacer {
 public:
  // stall_factor ≤ 1 turns pacing off (every step gets its full token budget);
  // probe_tokens is the allowance before any mixed step has been timed.
  explicit StepPacer(double stall_factor, int probe_tokens = 8);

  // Allowance returns how many prompt tokens the next step may carry beside
  // `decoders` decode tokens: unlimited (a large int) with no decoders or
  // pacing off. Otherwise ≥ 1 so a prompt makes progress — except every
  // kRefreshSteps-th step, which it keeps decode-only (0): a decode step's
  // time grows with the streams' context while a long prompt prefills, and
  // an estimate from before the prompt arrived would starve it.
  int Allowance(int decoders);
  static constexpr int kRefreshSteps = 8;
  // Observe records a finished step: its decode and prompt tokens and its
  // wall time.
  void Observe(int decoders, int prompt_tokens, double seconds);

  double decode_step_seconds() const { return decode_s_; }
  double prompt_token_seconds() const { return token_s_; }

 private:
  double factor_;
  int probe_;
  double decode_s_ = 0;  // moving average of decode-only steps
  double token_s_ = 0;   // moving average of one prompt token's marginal time
  int last_ = 0;         // the last allowance handed out beside decoders
  int mixed_ = 0;        // steps beside decoders since the last decode-only one
};

}  // namespace cllm::engine
