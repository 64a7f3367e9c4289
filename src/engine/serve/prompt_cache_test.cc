// The per-user prompt cache through the scheduler: a conversation gets the
// same tokens with and without it (greedy and sampled; prefixes ending
// mid-block and on block boundaries; a prompt cached up to its last token
// (the shared block it writes into is copied);
// a budget so small that blocks are evicted every turn), and one user's
// cache never serves another user.
#include <gtest/gtest.h>

#include <future>

#include "engine/serve/scheduler.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

constexpr int kB = KvCache::kBlockSize;

struct Turn {
  std::vector<TokenId> tokens;
  SequenceOutcome outcome;
};

// RunTurn submits one prompt and waits for its end.
Turn RunTurn(Scheduler& sched, const std::string& user, std::vector<TokenId> prompt, int max_tokens,
         SamplingParams sampling = {}) {
  Turn t;
  std::promise<SequenceOutcome> done;
  SequenceRequest r;
  r.user = user;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling = sampling;
  r.stop_at_eog = false;  // fixed lengths, so block boundaries fall where the test says
  r.on_token = [&t](TokenId id, std::string_view) {
    if (id >= 0) t.tokens.push_back(id);
    return true;
  };
  r.on_done = [&done](const SequenceOutcome& o) { done.set_value(o); };
  auto submitted = sched.Submit(std::move(r));
  EXPECT_TRUE(submitted.ok()) << submitted.detail();
  if (!submitted.ok()) return t;
  t.outcome = done.get_future().get();
  EXPECT_EQ(t.outcome.finish, FinishKind::kLength) << t.outcome.error;
  return t;
}

// Message is `n` pseudo-random token ids of a 512-token vocabulary (not 0-2:
// the special tokens).
std::vector<TokenId> Message(int n, uint32_t seed) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    t.push_back(static_cast<TokenId>(3 + (seed >> 8) % 509));
  }
  return t;
}

struct Step {
  int new_tokens;     // appended to the history (0: resend a prefix of it)
  int resend = 0;     // with new_tokens 0: resend history[0, resend)
  int want_cached;    // with the cache
};

// Conversation plays `steps` (each prompt = history + a new message, the
// answer joins the history) and returns each turn.
std::vector<Turn> Conversation(Scheduler& sched, const std::vector<Step>& steps, bool sampled) {
  std::vector<Turn> turns;
  std::vector<TokenId> history;
  for (size_t i = 0; i < steps.size(); ++i) {
    std::vector<TokenId> prompt;
    if (steps[i].new_tokens > 0) {
      auto msg = Message(steps[i].new_tokens, static_cast<uint32_t>(i + 1));
      history.insert(history.end(), msg.begin(), msg.end());
      prompt = history;
    } else {
      prompt.assign(history.begin(), history.begin() + steps[i].resend);
    }
    SamplingParams sp;
    if (sampled) {
      sp.temperature = 0.9f;
      sp.seed = 77 + i;
    }
    turns.push_back(RunTurn(sched, "alice", prompt, 10, sp));
    if (steps[i].new_tokens > 0) history.insert(history.end(), turns.back().tokens.begin(), turns.back().tokens.end());
  }
  return turns;
}

// Each turn's KV holds prompt + 9 of its 10 answer tokens; a prompt reuses
// the whole blocks it shares with them and the shared part of the next one.
const std::vector<Step> kSteps = {
    {64, 0, 0},     // 64 tokens: exactly two blocks; KV 73: two blocks and 9 positions
    {20, 0, 73},    // 74 + 20 = 94: the history ends mid-block; all 73 held positions are reused
    {30, 0, 103},   // 104 + 30 = 134 (previous KV: 103)
    {0, 134, 133},  // the same prompt again (a retry): cached to its end, its last token recomputed
    {0, 128, 127},  // a prompt of exactly 4 blocks, all cached: only its last token is computed
    {5, 0, 143},    // 144 + 5 = 149 (KV of the 134-token turns: 143)
};

SchedulerOptions Options(size_t cache_bytes) {
  SchedulerOptions so;
  so.context_length = 256;
  so.prefill_chunk = 40;  // prompts span several steps, cached or not
  so.prompt_cache_bytes = cache_bytes;
  return so;
}

TEST(PromptCacheTest, SameTokensWithAndWithoutTheCache) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  for (bool sampled : {false, true}) {
    SCOPED_TRACE(sampled ? "sampled" : "greedy");
    Scheduler plain(*model, Options(0));
    Scheduler cached(*model, Options(64 << 20));
    const auto want = Conversation(plain, kSteps, sampled);
    const auto got = Conversation(cached, kSteps, sampled);
    for (size_t i = 0; i < kSteps.size(); ++i) {
      EXPECT_EQ(got[i].tokens, want[i].tokens) << "turn " << i;
      EXPECT_EQ(want[i].outcome.cached_tokens, 0);
      EXPECT_EQ(got[i].outcome.cached_tokens, kSteps[i].want_cached) << "turn " << i;
      EXPECT_EQ(got[i].outcome.prompt_tokens, want[i].outcome.prompt_tokens);
    }
    plain.Stop();
    cached.Stop();
    const SchedulerStats s = cached.Stats();
    EXPECT_EQ(s.prompt_cache_hits, kSteps.size() - 1);
    EXPECT_EQ(s.prompt_cache_hit_tokens, 73u + 103 + 133 + 127 + 143);
    EXPECT_EQ(s.prompt_cache_evictions, 0u);
    EXPECT_GT(s.prompt_cache_bytes, 0u);
    // Computed prompt tokens: everything but the cached part.
    uint64_t prompts = 0;
    for (const auto& t : got) prompts += static_cast<uint64_t>(t.outcome.prompt_tokens);
    EXPECT_EQ(s.prompt_tokens, prompts - s.prompt_cache_hit_tokens);
    EXPECT_EQ(plain.Stats().prompt_cache_bytes, 0u);
  }
}

TEST(PromptCacheTest, TinyBudgetEvictsAndStillGivesTheSameTokens) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  const size_t block = KvCache(model->config(), KvType::kF16, kB).block_bytes();
  Scheduler plain(*model, Options(0));
  Scheduler tiny(*model, Options(2 * block));  // two blocks
  const auto want = Conversation(plain, kSteps, false);
  const auto got = Conversation(tiny, kSteps, false);
  for (size_t i = 0; i < kSteps.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "turn " << i;
    EXPECT_LE(got[i].outcome.cached_tokens, 2 * kB);
  }
  EXPECT_EQ(got[1].outcome.cached_tokens, 64);  // turn 0 left exactly two blocks
  tiny.Stop();
  const SchedulerStats s = tiny.Stats();
  EXPECT_GT(s.prompt_cache_evictions, 0u);
  EXPECT_LE(s.prompt_cache_bytes, 2 * block);
}

TEST(PromptCacheTest, AnotherUsersRequestNeverHitsThisUsersCache) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  Scheduler sched(*model, Options(64 << 20));
  const auto prompt = Message(3 * kB + 7, 9);
  const Turn a1 = RunTurn(sched, "user-a", prompt, 4);
  const Turn b1 = RunTurn(sched, "user-b", prompt, 4);  // the same prompt, just cached for A
  const Turn a2 = RunTurn(sched, "user-a", prompt, 4);
  const Turn anon = RunTurn(sched, "", prompt, 4);
  const Turn b2 = RunTurn(sched, "user-b", prompt, 4);  // B's own earlier request does count
  EXPECT_EQ(a1.outcome.cached_tokens, 0);
  EXPECT_EQ(b1.outcome.cached_tokens, 0) << "user B reused user A's KV blocks";
  EXPECT_EQ(anon.outcome.cached_tokens, 0);
  EXPECT_EQ(a2.outcome.cached_tokens, 3 * kB + 6);  // all but the last prompt token
  EXPECT_EQ(b2.outcome.cached_tokens, 3 * kB + 6);
  EXPECT_EQ(a1.tokens, b1.tokens);
  EXPECT_EQ(a2.tokens, a1.tokens);
  EXPECT_EQ(b2.tokens, a1.tokens);
  sched.Stop();
  EXPECT_EQ(sched.Stats().prompt_cache_hits, 2u);
}

}  // namespace
}  // namespace cllm::engine
