#include "engine/serve/scheduler.h"

#include <algorithm>

#include "base/log.h"
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

struct Scheduler::Sequence {
  int id = 0;
  SequenceRequest req;
  Sampler sampler;
  std::vector<TokenId> history;  // prompt + generated
  int prefilled = 0;             // prompt tokens already in the KV cache
  int generated = 0;
  TokenId last = -1;             // the token to feed at the next decode step
  std::string pending;           // UTF-8 bytes held back
  bool needs_logits = false;     // this step's batch asked for its logits

  Sequence(int i, SequenceRequest r) : id(i), req(std::move(r)), sampler(req.sampling), history(req.prompt) {}
  bool prefilling() const { return prefilled < static_cast<int>(req.prompt.size()); }
};

namespace {

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
      cache_(model.config(), options.kv_type, context_) {
  worker_ = std::thread([this] { Run(); });
}

Scheduler::~Scheduler() { Stop(); }

SubmitResult<Ok> Scheduler::Submit(SequenceRequest request) {
  if (request.prompt.empty()) return MakeError(SubmitErrc::kInvalid, "empty prompt");
  if (request.max_tokens < 0) return MakeError(SubmitErrc::kInvalid, "negative max_tokens");
  const int64_t need = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  if (need > context_) {
    return MakeError(SubmitErrc::kTooLong, "prompt (" + std::to_string(request.prompt.size()) +
                                               " tokens) + max_tokens (" + std::to_string(request.max_tokens) +
                                               ") exceeds the context of " + std::to_string(context_) + " tokens");
  }
  const TokenId n_vocab = static_cast<TokenId>(model_.config().n_vocab);
  for (TokenId t : request.prompt) {
    if (t < 0 || t >= n_vocab) return MakeError(SubmitErrc::kInvalid, "token id out of range");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return MakeError(SubmitErrc::kStopped, "the scheduler is shutting down");
  if (static_cast<int>(queue_.size()) >= options_.max_queued) {
    ++stats_.rejected;
    return MakeError(SubmitErrc::kQueueFull, "queue full (" + std::to_string(options_.max_queued) + " waiting)");
  }
  queue_.push_back(std::make_unique<Sequence>(next_seq_++, std::move(request)));
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
  s.queued = static_cast<int>(queue_.size());
  return s;
}

void Scheduler::Finish(std::unique_ptr<Sequence>& s, FinishKind kind, std::string error) {
  if (!s->pending.empty() && s->req.on_token && kind != FinishKind::kError) {
    (void)s->req.on_token(-1, s->pending);  // the held-back tail (invalid UTF-8 stays as bytes)
  }
  cache_.Release(s->id);  // zeroes the blocks: nothing of this user remains
  SequenceOutcome out;
  out.finish = kind;
  out.prompt_tokens = static_cast<int>(s->req.prompt.size());
  out.completion_tokens = s->generated;
  out.error = std::move(error);
  if (s->req.on_done) s->req.on_done(out);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.completed;
  }
  s.reset();
}

void Scheduler::Run() {
  std::vector<std::unique_ptr<Sequence>> active;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active.empty(); });
      if (stopping_) {
        for (auto& q : queue_) active.push_back(std::move(q));
        queue_.clear();
        stats_.active = stats_.queued = 0;
        lock.unlock();
        for (auto& s : active) Finish(s, FinishKind::kCancelled);
        return;
      }
      while (static_cast<int>(active.size()) < options_.max_active && !queue_.empty()) {
        active.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stats_.active = static_cast<int>(active.size());
      stats_.queued = static_cast<int>(queue_.size());
    }
    Step(active);
    active.erase(std::remove(active.begin(), active.end(), nullptr), active.end());
    std::lock_guard<std::mutex> lock(mu_);
    stats_.active = static_cast<int>(active.size());
  }
}

void Scheduler::Step(std::vector<std::unique_ptr<Sequence>>& active) {
  // --- build one batch ---------------------------------------------------------
  // Decodes first (one token each: they are latency-critical), then prefill
  // chunks within the step's token budget.
  std::vector<BatchEntry> batch;
  int budget = options_.max_batch_tokens;
  for (auto& s : active) {
    s->needs_logits = false;
    if (s->prefilling()) continue;
    batch.push_back({s->id, static_cast<int>(s->history.size()) - 1, s->last, true});
    s->needs_logits = true;
    --budget;
  }
  uint64_t prompt_tokens = 0;
  for (auto& s : active) {
    if (!s->prefilling() || budget <= 0) continue;
    const int n_prompt = static_cast<int>(s->req.prompt.size());
    const int n = std::min({options_.prefill_chunk, budget, n_prompt - s->prefilled});
    for (int i = 0; i < n; ++i) {
      const int pos = s->prefilled + i;
      const bool last = pos + 1 == n_prompt;
      batch.push_back({s->id, pos, s->req.prompt[pos], last});
      s->needs_logits = s->needs_logits || last;
    }
    s->prefilled += n;
    budget -= n;
    prompt_tokens += static_cast<uint64_t>(n);
  }
  if (batch.empty()) return;

  // --- run it ---------------------------------------------------------------
  std::vector<float> logits;
  auto ran = model_.Forward(batch, cache_, &logits);
  if (!ran.ok()) {
    // A failed step poisons every sequence in it (their KV state is unknown).
    log::error("forward step failed: {}", ran.detail());
    for (auto& s : active) Finish(s, FinishKind::kError, ran.detail());
    return;
  }

  // --- sample, stream, retire -------------------------------------------------
  const size_t n_vocab = static_cast<size_t>(model_.config().n_vocab);
  size_t row = 0;
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
  for (Sequence* s : order) {
    std::span<float> row_logits(logits.data() + row * n_vocab, n_vocab);
    ++row;
    auto it = std::find_if(active.begin(), active.end(), [&](const auto& p) { return p.get() == s; });
    if (s->generated >= s->req.max_tokens) {  // max_tokens 0: prompt only
      Finish(*it, FinishKind::kLength);
      continue;
    }
    TokenId next = s->sampler.Sample(row_logits, s->history);
    if (s->req.stop_at_eog && tok.IsEog(next)) {
      Finish(*it, FinishKind::kEndOfGeneration);
      continue;
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
