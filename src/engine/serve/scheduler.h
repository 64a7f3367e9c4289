// scheduler.h — many sequences through one model (continuous batching).
//
// One worker thread owns the model's forward pass. Each step it builds one
// batch mixing prefill chunks of newly admitted sequences with one decode
// token of every running sequence, runs Model::Forward once, samples a token
// for each sequence that needs one and hands it to that sequence's callback.
// A finished or cancelled sequence leaves at once and a queued one takes its
// place at the next step: nobody waits for the longest sequence of a batch.
//
// Isolation: every sequence has its own KV blocks (zeroed when released),
// its own sampler and history; nothing is shared between sequences, so a
// sequence's tokens are exactly those it would get running alone (tested).
// Callbacks run on the worker thread and must be quick (push to a queue).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "engine/model/sampler.h"

namespace cllm::engine {

enum class FinishKind { kEndOfGeneration, kLength, kCancelled, kError };
const char* FinishKindName(FinishKind k);

struct SequenceOutcome {
  FinishKind finish = FinishKind::kError;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  std::string error;  // for kError: what went wrong (never prompt text)
};

struct SequenceRequest {
  std::vector<TokenId> prompt;  // non-empty
  int max_tokens = 128;
  SamplingParams sampling;
  bool stop_at_eog = true;
  // on_token gets each token and the text that is ready (incomplete UTF-8 is
  // held back); returning false cancels the sequence. Runs on the worker.
  std::function<bool(TokenId id, std::string_view text)> on_token;
  // on_done is called exactly once, last, on the worker thread (or from
  // Submit's caller never: a rejected Submit does not call it).
  std::function<void(const SequenceOutcome&)> on_done;
};

struct SchedulerOptions {
  int max_active = 8;            // sequences decoded together
  int max_queued = 64;           // beyond this Submit fails (HTTP 429)
  int prefill_chunk = 256;       // prompt tokens per sequence per step
  int max_batch_tokens = 512;    // total tokens per step
  int context_length = 0;        // per sequence; 0 → the model's training context (capped at 8192)
  KvType kv_type = KvType::kF16;
};

struct SchedulerStats {
  int active = 0;
  int queued = 0;
  uint64_t steps = 0;
  uint64_t prompt_tokens = 0;
  uint64_t generated_tokens = 0;
  uint64_t completed = 0;
  uint64_t rejected = 0;
};

enum class SubmitErrc { kQueueFull = 1, kTooLong, kInvalid, kStopped };
template <typename T>
using SubmitResult = Result<T, SubmitErrc>;

class Scheduler {
 public:
  Scheduler(const Model& model, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Submit queues a sequence. kTooLong when prompt + max_tokens exceeds the
  // context, kQueueFull when the queue is full, kStopped after Stop().
  SubmitResult<Ok> Submit(SequenceRequest request);
  // Stop cancels every sequence (their on_done gets kCancelled) and joins.
  void Stop();
  SchedulerStats Stats() const;
  int context_length() const { return context_; }

 private:
  struct Sequence;
  void Run();
  void Step(std::vector<std::unique_ptr<Sequence>>& active);
  void Finish(std::unique_ptr<Sequence>& s, FinishKind kind, std::string error = "");

  const Model& model_;
  SchedulerOptions options_;
  int context_;
  KvCache cache_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> queue_;
  bool stopping_ = false;
  int next_seq_ = 0;
  SchedulerStats stats_;
  std::thread worker_;
};

}  // namespace cllm::engine
