// scheduler.h — many sequences through one model (continuous batching).
//
// One worker thread owns the model's forward pass. Each step it builds one
// batch mixing prefill chunks of newly admitted sequences with one decode
// token of every running sequence, runs Model::Forward once, samples a token
// for each sequence that needs one and hands it to that sequence's callback.
// A finished or cancelled sequence leaves at once and a queued one takes its
// place at the next step: nobody waits for the longest sequence of a batch.
//
// Fairness: every sequence belongs to a user. Waiting sequences sit in one
// queue per user, and free slots go to the users round-robin (one sequence
// per user per round), so a user with many waiting requests delays another
// user's request by at most one round. Per-user limits bound how many
// sequences one user has running and waiting, so no user fills the global
// queue or every slot; Submit says which limit refused a request.
//
// Isolation: every sequence has its own KV blocks (zeroed when released),
// its own sampler and history, so a sequence's tokens are exactly those it
// would get running alone (tested). The one exception is the per-user
// prompt cache (prefix_cache.h, off unless prompt_cache_bytes > 0): a
// sequence may start with read-only KV blocks of its OWN user's earlier
// sequences that hold exactly its leading tokens — the same values it
// would compute, so its tokens do not change either (tested); never
// another user's. A prompt given as embedding rows (prompt_embeds, split
// inference) has no ids: it never uses or fills the prompt cache.
// Callbacks run on the worker thread and must be quick and never block
// (write to a non-blocking response writer, push to a queue).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "engine/model/sampler.h"
#include "engine/serve/prefix_cache.h"
#include "engine/serve/step_pacer.h"

namespace cllm::engine {

enum class FinishKind { kEndOfGeneration, kLength, kCancelled, kError };
const char* FinishKindName(FinishKind k);

struct SequenceOutcome {
  FinishKind finish = FinishKind::kError;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens taken from the user's prompt cache (not computed)
  std::string error;  // for kError: what went wrong (never prompt text)
  // Admission: this sequence was the `admission`-th admitted since the
  // scheduler started (0-based), before forward step `admitted_step`; both
  // -1 when it never ran (cancelled while waiting).
  int64_t admission = -1;
  int64_t admitted_step = -1;
  // Time from Submit to admission into a slot (0 when never admitted).
  std::chrono::steady_clock::duration queue_wait{0};
};

// UserLimits bound what one user holds in the scheduler at once.
struct UserLimits {
  int max_active = 4;   // sequences being generated (at least 1 to run anything)
  int max_queued = 16;  // sequences waiting for a slot beyond those
};

// EmbeddingPooling picks how an embedding sequence's per-token hidden
// states become one vector (llama.cpp's LLAMA_POOLING_TYPE_* numbering).
enum class EmbeddingPooling { kMean = 1, kCls = 2, kLast = 3 };

struct SequenceRequest {
  std::string user;                  // who asked ("" is one anonymous user); fairness and limits key on it
  std::optional<UserLimits> limits;  // this user's limits; nullopt: SchedulerOptions::user_limits
  std::vector<TokenId> prompt;       // non-empty, unless prompt_embeds is set
  // prompt_embeds, when set, is the prompt instead of `prompt` (which must
  // then be empty): n_prompt × n_embd floats, row i the input of position i
  // (split inference: a client sends embedding rows — possibly perturbed —
  // never token ids; docs/split-inference.md). Submit refuses a size that is
  // not a non-zero multiple of n_embd, any non-finite value, and a prompt
  // over the context; the floats must not change after Submit (they are
  // checked there and read in place while the prompt runs). Without ids, such a prompt is invisible to everything
  // keyed on prompt ids: the prompt cache neither serves nor keeps it, the
  // repetition penalty sees only generated tokens (as the presence and
  // frequency penalties always do), and it cannot be an embedding sequence.
  std::shared_ptr<const std::vector<float>> prompt_embeds;
  int max_tokens = 128;
  SamplingParams sampling;
  bool stop_at_eog = true;
  // constraint, when set, masks each step's logits before sampling and is
  // told every chosen token (structured output); owned by this sequence.
  std::shared_ptr<TokenConstraint> constraint;
  // on_token gets each token and the text that is ready (incomplete UTF-8 is
  // held back); returning false cancels the sequence. Runs on the worker.
  std::function<bool(TokenId id, std::string_view text)> on_token;
  // cancelled, when set to true from any thread, ends the sequence before its
  // next step (kCancelled): a waiting sequence is dropped when its turn comes
  // without taking a slot, a prefilling one stops between prompt chunks —
  // what on_token cannot do, since it first runs after the whole prompt.
  std::shared_ptr<const std::atomic<bool>> cancelled;
  // top_logprobs ≥ 0 asks for the log-probabilities of each generated token
  // and that many alternatives (the model's own distribution: before bias,
  // penalties, constraint and temperature); on_logprobs gets them on the
  // worker just before on_token of the same token. -1: off (no extra pass
  // over the vocabulary).
  int top_logprobs = -1;
  std::function<void(const StepLogprobs&)> on_logprobs;
  // on_embedding, when set, makes this an embedding sequence: its prompt is
  // run (max_tokens must be 0), its final hidden states (after the output
  // norm) are pooled as `pooling` says, and on_embedding gets the n_embd
  // floats (not normalised) before on_done (kEndOfGeneration).
  std::function<void(std::vector<float> embedding)> on_embedding;
  EmbeddingPooling pooling = EmbeddingPooling::kMean;
  // on_done is called exactly once, last, on the worker thread (or from
  // Submit's caller never: a rejected Submit does not call it).
  std::function<void(const SequenceOutcome&)> on_done;
};

struct SchedulerOptions {
  int max_active = 8;            // sequences decoded together
  int max_queued = 1024;         // waiting sequences of all users together; beyond: kQueueFull
  UserLimits user_limits;        // per user, unless a request carries its own
  int prefill_chunk = 256;       // prompt tokens per sequence per step
  int max_batch_tokens = 512;    // total tokens per step
  // While sequences decode, a step carrying prompt tokens is kept within this
  // factor of a decode-only step (step_pacer.h): a long prompt arriving does
  // not stall running streams for its whole prefill. ≤ 1: off.
  double prefill_stall_factor = 2.0;
  int context_length = 0;        // per sequence; 0 → the model's training context (capped at 8192)
  KvType kv_type = KvType::kF16;
  // Prompt cache budget (bytes of KV blocks kept after their sequences
  // end), in equal shares for `prompt_cache_users` users (the API keys): a
  // user's blocks are only ever evicted for its own (or for live sequences
  // under memory pressure). A share under one block disables it. See
  // prefix_cache.h.
  size_t prompt_cache_bytes = 0;
  size_t prompt_cache_users = 1;
  // Prompts given as embedding rows are held (n_embd floats a row, in the
  // server's locked memory) from Submit until their prefill ends. Rows held
  // by all users together, and by one user, are bounded: past either a
  // Submit is refused (kQueueFull, kUserQueueFull). 0: max_active contexts
  // (all slots prefilling a full context), and 2 contexts per user. Each is
  // at least one context (a single prompt always fits).
  int64_t max_embeds_rows = 0;
  int64_t max_user_embeds_rows = 0;
};

struct SchedulerStats {
  int active = 0;
  int queued = 0;
  int users = 0;  // users with a sequence running or waiting
  uint64_t steps = 0;
  uint64_t prompt_tokens = 0;
  uint64_t generated_tokens = 0;
  uint64_t completed = 0;
  uint64_t rejected = 0;       // all refusals: global queue and per-user limits
  uint64_t rejected_user = 0;  // of which per-user limits
  // The prompt cache: sequences that reused cached blocks, the prompt
  // tokens they did not compute, blocks let go, bytes held now.
  uint64_t prompt_cache_hits = 0;
  uint64_t prompt_cache_hit_tokens = 0;
  uint64_t prompt_cache_evictions = 0;
  uint64_t prompt_cache_bytes = 0;
  uint64_t prompt_cache_user_bytes = 0;  // each user's share (0: the cache is off)
  int64_t embeds_rows = 0;               // prompt rows held now (waiting and prefilling)
};

enum class SubmitErrc {
  kQueueFull = 1,    // the global queue is full (every user together)
  kTooLong,          // prompt + max_tokens over the context
  kInvalid,          // empty prompt, token id out of range, negative max_tokens, bad prompt_embeds
  kStopped,          // after Stop()
  kUserQueueFull,    // this user already has its limit of sequences running and waiting
  kUserActiveLimit,  // this user may not queue (max_queued 0) and runs its limit of sequences
};
const char* SubmitErrcName(SubmitErrc code);
template <typename T>
using SubmitResult = Result<T, SubmitErrc>;

class Scheduler {
 public:
  Scheduler(const Model& model, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Submit queues a sequence in its user's queue. kTooLong when prompt +
  // max_tokens exceeds the context; kUserQueueFull / kUserActiveLimit when
  // the user is at its limits (checked first: a user's own limit is the
  // answer it can act on), kQueueFull when all users together fill the
  // queue; kStopped after Stop(). A refused request calls no callback.
  SubmitResult<Ok> Submit(SequenceRequest request);
  // SubmitGroup queues several sequences of one user (n choices of one
  // request, a batch of embedding inputs) all or none: each is checked as
  // Submit checks it, and the user's limits and the queue must hold them
  // all together. Refused: no callback is called.
  SubmitResult<Ok> SubmitGroup(std::vector<SequenceRequest> requests);
  // Stop cancels every sequence (their on_done gets kCancelled) and joins.
  void Stop();
  SchedulerStats Stats() const;
  int context_length() const { return context_; }

 private:
  struct Sequence;
  // UserQueue exists while its user has a sequence running or waiting.
  struct UserQueue {
    std::deque<std::unique_ptr<Sequence>> waiting;
    int active = 0;
    int64_t embeds_rows = 0;  // prompt rows its sequences hold (ReleaseEmbeds)
    UserLimits limits;        // from the user's latest request
  };
  // Admit moves waiting sequences into free slots; cancelled ones it meets go
  // to `dropped` instead (finished by the caller, outside the lock).
  void Admit(std::vector<std::unique_ptr<Sequence>>& active,
             std::vector<std::unique_ptr<Sequence>>& dropped);  // holds mu_
  void Run();
  void Step(std::vector<std::unique_ptr<Sequence>>& active);
  void PoolEmbeddings(std::vector<std::unique_ptr<Sequence>>& active, const std::vector<BatchEntry>& batch,
                      const std::vector<float>& hidden);
  void Finish(std::unique_ptr<Sequence>& s, FinishKind kind, std::string error = "");
  // Attach starts a newly admitted sequence, with its user's cached prefix.
  void Attach(Sequence& s);
  void PublishCacheStats();  // takes mu_
  // ReleaseEmbeds drops the sequence's rows and gives back what they were
  // charged, to its user (when `user` is not null) and to everyone's total.
  void ReleaseEmbeds(Sequence& s, UserQueue* user);  // holds mu_

  const Model& model_;
  SchedulerOptions options_;
  int context_;
  KvCache cache_;
  PrefixCache prefix_;  // after cache_: it lets go of its blocks first
  StepPacer pacer_;     // worker thread
  uint64_t cache_hits_ = 0;        // worker thread
  uint64_t cache_hit_tokens_ = 0;  // worker thread
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::unordered_map<std::string, UserQueue> users_;
  std::deque<std::string> ring_;  // users with waiting sequences, each once, in round-robin order
  int queued_ = 0;                // waiting sequences of all users
  int64_t embeds_rows_ = 0;       // prompt rows held by every sequence (ReleaseEmbeds)
  int64_t max_embeds_rows_ = 0;       // options_.max_embeds_rows, resolved
  int64_t max_user_embeds_rows_ = 0;  // options_.max_user_embeds_rows, resolved
  bool stopping_ = false;
  int next_seq_ = 0;
  int64_t admissions_ = 0;
  SchedulerStats stats_;
  std::thread worker_;
};

}  // namespace cllm::engine
