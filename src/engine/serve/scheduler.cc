#include "engine/serve/scheduler.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "base/log.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/generator.h"

namespace cllm::engine {

const char* FinishKindName(FinishKind k) {
  switch (k) {
    case FinishKind::kEndOfGeneration: return "end_of_generation";
    case FinishKind::kLength: return "length";
    case FinishKind::kCancelled: return "cancelled";
    case FinishKind::kError: return "error";
  }
  return "unknown";
}

const char* SubmitErrcName(SubmitErrc code) {
  switch (code) {
    case SubmitErrc::kQueueFull: return "queue_full";
    case SubmitErrc::kTooLong: return "too_long";
    case SubmitErrc::kInvalid: return "invalid";
    case SubmitErrc::kStopped: return "stopped";
    case SubmitErrc::kUserQueueFull: return "user_queue_full";
    case SubmitErrc::kUserActiveLimit: return "user_active_limit";
  }
  return "unknown";
}

struct Scheduler::Sequence {
  int id = 0;
  SequenceRequest req;
  Sampler sampler;
  std::vector<TokenId> history;  // prompt + generated (only generated: a prompt given as embeddings has no ids)
  int n_prompt = 0;              // prompt positions (tokens or embedding rows)
  bool from_embeds = false;      // the prompt was given as rows (req.prompt_embeds, dropped after prefill)
  int64_t embeds_charge = 0;     // rows charged to its user and the total until ReleaseEmbeds
  int unseen = 0;                // prompt positions missing from history: n_prompt for embeddings, else 0
  int prefilled = 0;             // prompt tokens already in the KV cache
  int cached = 0;                // of which taken from the prompt cache
  bool attached = false;         // Attach ran
  int generated = 0;
  TokenId last = -1;             // the token to feed at the next decode step
  std::string pending;           // UTF-8 bytes held back
  bool needs_logits = false;     // this step's batch asked for its logits
  std::vector<double> pooled;    // embedding: the sum (mean), first (cls) or last hidden state so far
  std::vector<float> raw_row;    // logprobs: this step's logits before bias, penalties and constraint
  bool admitted = false;         // counted in its user's `active`
  int64_t admission = -1;
  int64_t admitted_step = -1;
  std::chrono::steady_clock::time_point submitted_at = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration queue_wait{0};

  Sequence(int i, SequenceRequest r, int n_embd) : id(i), req(std::move(r)), sampler(req.sampling), history(req.prompt) {
    from_embeds = req.prompt_embeds != nullptr;
    n_prompt = embeds() ? static_cast<int>(req.prompt_embeds->size() / static_cast<size_t>(n_embd))
                        : static_cast<int>(req.prompt.size());
    unseen = embeds() ? n_prompt : 0;
  }
  bool prefilling() const { return prefilled < n_prompt; }
  bool embeds() const { return from_embeds; }
  bool embedding() const { return static_cast<bool>(req.on_embedding); }
  bool cancelled() const { return req.cancelled && req.cancelled->load(); }
};

namespace {

// CheckPromptEmbeds validates a prompt given as embeddings: it comes from a
// client, so every value is checked before it reaches the model.
SubmitResult<Ok> CheckPromptEmbeds(const SequenceRequest& r, int n_embd, int context) {
  if (!r.prompt.empty()) return MakeError(SubmitErrc::kInvalid, "a prompt is token ids or embeddings, not both");
  if (r.on_embedding) return MakeError(SubmitErrc::kInvalid, "an embedding sequence takes token ids, not prompt embeddings");
  const std::vector<float>& e = *r.prompt_embeds;
  if (e.empty()) return MakeError(SubmitErrc::kInvalid, "empty prompt embeddings");
  if (e.size() % static_cast<size_t>(n_embd) != 0) {
    return MakeError(SubmitErrc::kInvalid, "prompt embeddings of " + std::to_string(e.size()) +
                                               " floats are not rows of n_embd = " + std::to_string(n_embd));
  }
  const size_t rows = e.size() / static_cast<size_t>(n_embd);
  if (rows + static_cast<size_t>(r.max_tokens) > static_cast<size_t>(context)) {
    return MakeError(SubmitErrc::kTooLong, "prompt (" + std::to_string(rows) + " embedding rows) + max_tokens (" +
                                               std::to_string(r.max_tokens) + ") exceeds the context of " +
                                               std::to_string(context) + " tokens");
  }
  for (size_t i = 0; i < e.size(); ++i) {
    if (!std::isfinite(e[i])) {
      return MakeError(SubmitErrc::kInvalid, "prompt embeddings: value " + std::to_string(i % static_cast<size_t>(n_embd)) +
                                                 " of row " + std::to_string(i / static_cast<size_t>(n_embd)) + " is not finite");
    }
  }
  return Ok{};
}

int ContextFor(const Model& model, const SchedulerOptions& o) {
  if (o.context_length > 0) return o.context_length;
  int train = model.config().n_ctx_train;
  return train > 0 ? std::min(train, 8192) : 2048;
}

}  // namespace

Scheduler::Scheduler(const Model& model, SchedulerOptions options)
    : model_(model),
      options_(options),
      context_(ContextFor(model, options)),
      cache_(model.config(), options.kv_type, context_),
      prefix_(cache_, options.prompt_cache_bytes / cache_.block_bytes(), options.prompt_cache_users),
      pacer_(options.prefill_stall_factor) {
  cache_.SetReclaimer([this] { return prefix_.EvictOne(); });  // cached blocks give way to live sequences
  const int64_t context = context_;
  max_embeds_rows_ = options.max_embeds_rows > 0 ? std::max(options.max_embeds_rows, context)
                                                 : std::max<int64_t>(options.max_active, 1) * context;
  max_user_embeds_rows_ =
      options.max_user_embeds_rows > 0 ? std::max(options.max_user_embeds_rows, context) : 2 * context;
  stats_.prompt_cache_user_bytes = static_cast<uint64_t>(prefix_.per_user_blocks()) * cache_.block_bytes();
  worker_ = std::thread([this] { Run(); });
}

Scheduler::~Scheduler() { Stop(); }

SubmitResult<Ok> Scheduler::Submit(SequenceRequest request) {
  std::vector<SequenceRequest> one;
  one.push_back(std::move(request));
  return SubmitGroup(std::move(one));
}

SubmitResult<Ok> Scheduler::SubmitGroup(std::vector<SequenceRequest> requests) {
  if (requests.empty()) return MakeError(SubmitErrc::kInvalid, "no sequences");
  const TokenId n_vocab = static_cast<TokenId>(model_.config().n_vocab);
  const int n_embd = model_.config().n_embd;
  for (const SequenceRequest& request : requests) {
    if (request.max_tokens < 0) return MakeError(SubmitErrc::kInvalid, "negative max_tokens");
    if (request.user != requests[0].user) return MakeError(SubmitErrc::kInvalid, "a group belongs to one user");
    if (request.prompt_embeds) {
      CLLM_RETURN_IF_ERROR(CheckPromptEmbeds(request, n_embd, context_));
      continue;
    }
    if (request.prompt.empty()) return MakeError(SubmitErrc::kInvalid, "empty prompt");
    if (request.on_embedding && request.max_tokens != 0) {
      return MakeError(SubmitErrc::kInvalid, "an embedding sequence generates nothing (max_tokens 0)");
    }
    const int64_t need = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
    if (need > context_) {
      return MakeError(SubmitErrc::kTooLong, "prompt (" + std::to_string(request.prompt.size()) +
                                                 " tokens) + max_tokens (" + std::to_string(request.max_tokens) +
                                                 ") exceeds the context of " + std::to_string(context_) + " tokens");
    }
    for (TokenId t : request.prompt) {
      if (t < 0 || t >= n_vocab) return MakeError(SubmitErrc::kInvalid, "token id out of range");
    }
  }
  // A constraint is one sequence's state (and sequences are sampled in
  // parallel): a group that shares one gets a fresh matcher per extra use.
  for (size_t i = 1; i < requests.size(); ++i) {
    for (size_t j = 0; j < i && requests[i].constraint; ++j) {
      if (requests[j].constraint == requests[i].constraint) {
        requests[i].constraint = requests[i].constraint->Fresh();
        break;
      }
    }
  }
  const std::string user_id = requests[0].user;
  const int64_t count = static_cast<int64_t>(requests.size());
  // Rows each sequence is charged: a matrix shared by several (n choices)
  // is split among them, so the charges add up to the rows held.
  std::vector<int64_t> charges(requests.size(), 0);
  int64_t embeds_rows = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& rows = requests[i].prompt_embeds;
    if (!rows) continue;
    size_t first = i, sharers = 0;
    for (size_t j = 0; j < requests.size(); ++j) {
      if (requests[j].prompt_embeds != rows) continue;
      if (sharers++ == 0) first = j;
    }
    const int64_t total = static_cast<int64_t>(rows->size() / static_cast<size_t>(n_embd));
    charges[i] = total / static_cast<int64_t>(sharers) + (i == first ? total % static_cast<int64_t>(sharers) : 0);
    embeds_rows += charges[i];
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return MakeError(SubmitErrc::kStopped, "the scheduler is shutting down");
  const UserLimits limits = requests[0].limits.value_or(options_.user_limits);
  auto found = users_.find(user_id);
  const int user_active = found == users_.end() ? 0 : found->second.active;
  const int user_waiting = found == users_.end() ? 0 : static_cast<int>(found->second.waiting.size());
  // The user's own limits first: they are what this caller can act on. A
  // user holds at most max_active running + max_queued waiting sequences.
  if (limits.max_active < 1 || static_cast<int64_t>(user_active) + user_waiting + count >
                                   static_cast<int64_t>(limits.max_active) + limits.max_queued) {
    ++stats_.rejected;
    ++stats_.rejected_user;
    const std::string held = std::to_string(user_active) + " running, " + std::to_string(user_waiting) +
                             " waiting, " + std::to_string(count) + " asked; limits " +
                             std::to_string(limits.max_active) + " running, " + std::to_string(limits.max_queued) +
                             " waiting";
    if (limits.max_queued > 0) return MakeError(SubmitErrc::kUserQueueFull, "too many requests of this user (" + held + ")");
    return MakeError(SubmitErrc::kUserActiveLimit, "this user runs its limit of requests (" + held + ")");
  }
  // Rows given as prompts wait in memory: per user, then everyone's.
  const int64_t user_rows = found == users_.end() ? 0 : found->second.embeds_rows;
  if (embeds_rows > 0 && user_rows + embeds_rows > max_user_embeds_rows_) {
    ++stats_.rejected;
    ++stats_.rejected_user;
    return MakeError(SubmitErrc::kUserQueueFull, "this user's prompts given as embeddings hold " +
                                                     std::to_string(user_rows) + " rows, " +
                                                     std::to_string(embeds_rows) + " more asked; limit " +
                                                     std::to_string(max_user_embeds_rows_));
  }
  if (queued_ + count > options_.max_queued) {
    ++stats_.rejected;
    return MakeError(SubmitErrc::kQueueFull, "queue full (" + std::to_string(options_.max_queued) + " waiting)");
  }
  if (embeds_rows > 0 && embeds_rows_ + embeds_rows > max_embeds_rows_) {
    ++stats_.rejected;
    return MakeError(SubmitErrc::kQueueFull, "prompts given as embeddings hold " + std::to_string(embeds_rows_) +
                                                 " rows of " + std::to_string(max_embeds_rows_));
  }
  UserQueue& user = users_[user_id];
  user.limits = limits;
  if (user.waiting.empty()) ring_.push_back(user_id);  // joins the round at the back
  for (size_t i = 0; i < requests.size(); ++i) {
    user.waiting.push_back(std::make_unique<Sequence>(next_seq_++, std::move(requests[i]), n_embd));
    user.waiting.back()->embeds_charge = charges[i];
    ++queued_;
  }
  user.embeds_rows += embeds_rows;
  embeds_rows_ += embeds_rows;
  wake_.notify_one();
  return Ok{};
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SchedulerStats s = stats_;
  s.queued = queued_;
  s.embeds_rows = embeds_rows_;
  s.users = static_cast<int>(users_.size());
  return s;
}

void Scheduler::Finish(std::unique_ptr<Sequence>& s, FinishKind kind, std::string error) {
  if (!s->pending.empty() && s->req.on_token && kind != FinishKind::kError) {
    (void)s->req.on_token(-1, s->pending);  // the held-back tail (invalid UTF-8 stays as bytes)
  }
  if (kind != FinishKind::kError && prefix_.enabled() && !s->embeds()) {
    // Its blocks (prompt and generated) stay for the user's next turn. The
    // KV holds history[0, Length): the last sampled token was not fed. A
    // prompt given as embeddings has no ids to key them on: never kept.
    const int length = cache_.Length(s->id);
    const auto blocks = cache_.Blocks(s->id);
    const size_t used = static_cast<size_t>((length + KvCache::kBlockSize - 1) / KvCache::kBlockSize);
    CLLM_CHECK(used <= blocks.size() && static_cast<size_t>(length) <= s->history.size());
    prefix_.Insert(s->req.user, std::span(s->history).first(static_cast<size_t>(length)), blocks.first(used));
  }
  cache_.Release(s->id);  // zeroes the blocks nobody else holds: nothing of this user remains
  PublishCacheStats();
  SequenceOutcome out;
  out.finish = kind;
  out.prompt_tokens = s->n_prompt;
  out.completion_tokens = s->generated;
  out.cached_tokens = s->cached;
  out.error = std::move(error);
  out.admission = s->admission;
  out.admitted_step = s->admitted_step;
  out.queue_wait = s->queue_wait;
  if (s->req.on_done) s->req.on_done(out);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.completed;
    auto user = users_.find(s->req.user);
    ReleaseEmbeds(*s, s->admitted && user != users_.end() ? &user->second : nullptr);
    if (s->admitted && user != users_.end()) {
      --user->second.active;
      if (user->second.active == 0 && user->second.waiting.empty()) users_.erase(user);
    }
  }
  s.reset();
}

void Scheduler::Attach(Sequence& s) {
  s.attached = true;
  if (!prefix_.enabled() || s.embeds()) return;  // embeddings: no ids to look up
  // The user's longest cached prefix of the prompt. The last prompt token is
  // always computed (its logits give the first token), so a prompt cached
  // to its end recomputes that one position; the first write into a shared
  // block (a partly used one, or that last position) copies the block
  // (KvCache::Unshare) — the cached one is never written.
  const int n_prompt = s.n_prompt;
  PrefixHit hit = prefix_.Lookup(s.req.user, s.req.prompt);
  const int cached = std::min(hit.tokens, n_prompt - 1);
  if (cached > 0) {
    hit.blocks.resize(static_cast<size_t>((cached + KvCache::kBlockSize - 1) / KvCache::kBlockSize));
    cache_.Share(s.id, hit.blocks, cached);
    s.prefilled = s.cached = cached;
    ++cache_hits_;
    cache_hit_tokens_ += static_cast<uint64_t>(cached);
  }
  PublishCacheStats();
}

void Scheduler::ReleaseEmbeds(Sequence& s, UserQueue* user) {
  s.req.prompt_embeds.reset();
  embeds_rows_ -= s.embeds_charge;
  if (user != nullptr) user->embeds_rows -= s.embeds_charge;
  s.embeds_charge = 0;
}

void Scheduler::PublishCacheStats() {
  const PrefixCacheStats& c = prefix_.stats();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.prompt_cache_hits = cache_hits_;
  stats_.prompt_cache_hit_tokens = cache_hit_tokens_;
  stats_.prompt_cache_evictions = c.evictions;
  stats_.prompt_cache_bytes = static_cast<uint64_t>(c.blocks) * cache_.block_bytes();
}

// Admit fills free slots from the users' queues, round-robin: the user at
// the front of the ring gets one slot and goes to the back if it has more
// waiting, so each round offers every waiting user one slot. A user at its
// own active limit is passed over (to the back) without taking a slot.
void Scheduler::Admit(std::vector<std::unique_ptr<Sequence>>& active,
                      std::vector<std::unique_ptr<Sequence>>& dropped) {
  size_t passed_over = 0;  // users in a row at their active limit
  while (static_cast<int>(active.size()) < options_.max_active && !ring_.empty() && passed_over < ring_.size()) {
    std::string id = std::move(ring_.front());
    ring_.pop_front();
    UserQueue& user = users_.at(id);
    if (user.active >= user.limits.max_active) {
      ring_.push_back(std::move(id));
      ++passed_over;
      continue;
    }
    passed_over = 0;
    std::unique_ptr<Sequence> s = std::move(user.waiting.front());
    user.waiting.pop_front();
    --queued_;
    if (s->cancelled()) {
      // Its client is gone: it takes no slot, and the user keeps its turn.
      ReleaseEmbeds(*s, &user);
      dropped.push_back(std::move(s));
      if (!user.waiting.empty()) {
        ring_.push_front(std::move(id));
      } else if (user.active == 0) {
        users_.erase(id);
      }
      continue;
    }
    ++user.active;
    s->admitted = true;
    s->admission = admissions_++;
    s->admitted_step = static_cast<int64_t>(stats_.steps);
    s->queue_wait = std::chrono::steady_clock::now() - s->submitted_at;
    active.push_back(std::move(s));
    if (!user.waiting.empty()) ring_.push_back(std::move(id));
  }
}

void Scheduler::Run() {
  std::vector<std::unique_ptr<Sequence>> active;
  std::vector<std::unique_ptr<Sequence>> dropped;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || queued_ > 0 || !active.empty(); });
      if (stopping_) {
        for (auto& [id, user] : users_) {
          for (auto& q : user.waiting) {
            ReleaseEmbeds(*q, &user);
            active.push_back(std::move(q));
          }
        }
        users_.clear();
        ring_.clear();
        queued_ = 0;
        stats_.active = 0;
        lock.unlock();
        for (auto& s : active) Finish(s, FinishKind::kCancelled);
        return;
      }
      Admit(active, dropped);
      stats_.active = static_cast<int>(active.size());
    }
    for (auto& s : dropped) Finish(s, FinishKind::kCancelled);
    dropped.clear();
    for (auto& s : active) {
      if (!s->attached && !s->cancelled()) Attach(*s);
    }
    // Cancelled while prefilling or decoding: end before spending a step.
    for (auto& s : active) {
      if (s->cancelled()) Finish(s, FinishKind::kCancelled);
    }
    active.erase(std::remove(active.begin(), active.end(), nullptr), active.end());
    if (active.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.active = 0;
      continue;
    }
    Step(active);
    active.erase(std::remove(active.begin(), active.end(), nullptr), active.end());
    std::lock_guard<std::mutex> lock(mu_);
    stats_.active = static_cast<int>(active.size());
  }
}

// PoolEmbeddings folds this step's hidden states ([batch, n_embd]) into each
// embedding sequence's pool, and finishes those whose prompt is complete.
void Scheduler::PoolEmbeddings(std::vector<std::unique_ptr<Sequence>>& active, const std::vector<BatchEntry>& batch,
                               const std::vector<float>& hidden) {
  const size_t n_embd = static_cast<size_t>(model_.config().n_embd);
  for (auto& s : active) {
    if (!s->embedding()) continue;
    s->pooled.resize(n_embd, 0.0);
    for (size_t e = 0; e < batch.size(); ++e) {
      if (batch[e].seq != s->id) continue;
      const float* h = hidden.data() + e * n_embd;
      const bool first = batch[e].pos == 0;
      const bool last = batch[e].pos + 1 == s->n_prompt;
      switch (s->req.pooling) {
        case EmbeddingPooling::kMean:
          for (size_t i = 0; i < n_embd; ++i) s->pooled[i] += h[i];
          break;
        case EmbeddingPooling::kCls:
          if (first) std::copy(h, h + n_embd, s->pooled.begin());
          break;
        case EmbeddingPooling::kLast:
          if (last) std::copy(h, h + n_embd, s->pooled.begin());
          break;
      }
    }
  }
  for (auto& s : active) {
    if (!s->embedding() || s->prefilling()) continue;
    const double scale = s->req.pooling == EmbeddingPooling::kMean ? 1.0 / static_cast<double>(s->n_prompt) : 1.0;
    std::vector<float> out(n_embd);
    for (size_t i = 0; i < n_embd; ++i) out[i] = static_cast<float>(s->pooled[i] * scale);
    s->req.on_embedding(std::move(out));
    Finish(s, FinishKind::kEndOfGeneration);
  }
  active.erase(std::remove(active.begin(), active.end(), nullptr), active.end());
}

void Scheduler::Step(std::vector<std::unique_ptr<Sequence>>& active) {
  // --- build one batch ---------------------------------------------------------
  // Decodes first (one token each: they are latency-critical), then prefill
  // chunks within the step's token budget.
  std::vector<BatchEntry> batch;
  int budget = options_.max_batch_tokens;
  int decoders = 0;
  bool prefilling = false;
  for (auto& s : active) {
    s->needs_logits = false;
    if (s->prefilling()) {
      prefilling = true;
      continue;
    }
    batch.push_back({s->id, s->unseen + static_cast<int>(s->history.size()) - 1, s->last, true});
    s->needs_logits = true;
    --budget;
    ++decoders;
  }
  // Beside running streams, prompt tokens get only what keeps this step
  // within the stall factor (step_pacer.h).
  if (prefilling) budget = std::min(budget, pacer_.Allowance(decoders));
  uint64_t prompt_tokens = 0;
  for (auto& s : active) {
    if (!s->prefilling() || budget <= 0) continue;
    const int n_prompt = s->n_prompt;
    const int n = std::min({options_.prefill_chunk, budget, n_prompt - s->prefilled});
    for (int i = 0; i < n; ++i) {
      const int pos = s->prefilled + i;
      const bool last = pos + 1 == n_prompt && !s->embedding();
      if (s->embeds()) {
        // The row is read in place (the request keeps it alive); no token id exists.
        const float* row = s->req.prompt_embeds->data() + static_cast<size_t>(pos) * model_.config().n_embd;
        batch.push_back({s->id, pos, -1, last, row});
      } else {
        batch.push_back({s->id, pos, s->req.prompt[pos], last});
      }
      s->needs_logits = s->needs_logits || last;
    }
    s->prefilled += n;
    budget -= n;
    prompt_tokens += static_cast<uint64_t>(n);
  }
  if (batch.empty()) return;

  // --- run it ---------------------------------------------------------------
  bool want_hidden = false;
  for (auto& s : active) want_hidden = want_hidden || s->embedding();
  std::vector<float> logits, hidden;  // hidden: [batch, n_embd] when an embedding sequence is in the batch
  const auto started = std::chrono::steady_clock::now();
  auto ran = model_.Forward(batch, cache_, &logits, want_hidden ? &hidden : nullptr);
  pacer_.Observe(decoders, static_cast<int>(prompt_tokens),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!ran.ok()) {
    // A failed step poisons every sequence in it (their KV state is unknown).
    log::error("forward step failed: {}", ran.detail());
    for (auto& s : active) Finish(s, FinishKind::kError, ran.detail());
    return;
  }

  // Rows given as prompts were read in place by this step; those whose
  // prompt is now complete are never read again: let them go.
  for (auto& s : active) {
    if (!s->req.prompt_embeds || s->prefilling()) continue;  // (most steps: none, and no lock taken)
    std::lock_guard<std::mutex> lock(mu_);
    auto user = users_.find(s->req.user);
    ReleaseEmbeds(*s, user != users_.end() ? &user->second : nullptr);
  }

  if (want_hidden) PoolEmbeddings(active, batch, hidden);

  // --- sample, stream, retire -------------------------------------------------
  const size_t n_vocab = static_cast<size_t>(model_.config().n_vocab);
  uint64_t generated = 0;
  const Tokenizer& tok = model_.tokenizer();
  // Logit rows come in batch order; decodes were added first, then prefills,
  // so walk the sequences in the same two passes.
  std::vector<Sequence*> order;
  for (auto& s : active) {
    if (s->needs_logits && s->generated > 0) order.push_back(s.get());
  }
  for (auto& s : active) {
    if (s->needs_logits && s->generated == 0) order.push_back(s.get());
  }
  // Sampling is each sequence's own (its sampler, constraint, logprobs), so
  // it runs on the engine pool, one sequence per unit; what follows it
  // (callbacks into the network layer, retiring) stays on this thread, in
  // order. The tokens are the same whatever the split.
  struct Sampled {
    bool over = false;  // already at max_tokens: nothing is sampled
    TokenId next = -1;
    StepLogprobs logprobs;
    double log_sum = 0;
  };
  std::vector<Sampled> sampled(order.size());
  auto sample = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      Sequence* s = order[static_cast<size_t>(i)];
      Sampled& out = sampled[static_cast<size_t>(i)];
      if (s->generated >= s->req.max_tokens) {  // max_tokens 0: prompt only
        out.over = true;
        continue;
      }
      std::span<float> row_logits(logits.data() + static_cast<size_t>(i) * n_vocab, n_vocab);
      // Logprobs describe the model's distribution: taken before the
      // constraint's mask and the sampler's bias and penalties change the row.
      if (s->req.top_logprobs >= 0 && s->req.on_logprobs) {
        LogSoftmaxTop(row_logits, s->req.top_logprobs, &out.log_sum, &out.logprobs.top);
        s->raw_row.assign(row_logits.begin(), row_logits.end());
      }
      if (s->req.constraint) s->req.constraint->Mask(row_logits);
      out.next = s->sampler.Sample(row_logits, s->history, s->req.prompt.size());
      if (s->req.constraint) s->req.constraint->Accept(out.next);
    }
  };
  if (order.size() > 1) {
    ParallelFor(static_cast<int64_t>(order.size()), 1, sample);
  } else {
    sample(0, static_cast<int64_t>(order.size()));
  }

  for (size_t i = 0; i < order.size(); ++i) {
    Sequence* s = order[i];
    auto it = std::find_if(active.begin(), active.end(), [&](const auto& p) { return p.get() == s; });
    if (sampled[i].over) {
      Finish(*it, FinishKind::kLength);
      continue;
    }
    const TokenId next = sampled[i].next;
    if (s->req.stop_at_eog && tok.IsEog(next)) {
      Finish(*it, FinishKind::kEndOfGeneration);
      continue;
    }
    if (s->req.top_logprobs >= 0 && s->req.on_logprobs) {
      StepLogprobs& step_lp = sampled[i].logprobs;
      step_lp.chosen = {next, static_cast<float>(s->raw_row[static_cast<size_t>(next)] - sampled[i].log_sum),
                        tok.TokenToPiece(next)};
      for (auto& t : step_lp.top) t.piece = tok.TokenToPiece(t.token);
      s->req.on_logprobs(step_lp);
    }
    s->history.push_back(next);
    s->last = next;
    ++s->generated;
    ++generated;
    s->pending += tok.TokenToPiece(next);
    size_t hold = Utf8Holdback(s->pending);
    std::string ready = s->pending.substr(0, s->pending.size() - hold);
    s->pending.erase(0, s->pending.size() - hold);
    if (s->req.on_token && !s->req.on_token(next, ready)) {
      s->pending.clear();
      Finish(*it, FinishKind::kCancelled);
      continue;
    }
    if (s->generated >= s->req.max_tokens) Finish(*it, FinishKind::kLength);
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.steps;
  stats_.prompt_tokens += prompt_tokens;
  stats_.generated_tokens += generated;
}

}  // namespace cllm::engine
