// A prompt given as embedding rows instead of token ids (split inference,
// docs/split-inference.md): the rows of token_embd for a prompt's ids give
// exactly the tokens of the id path — in Model::Forward for every
// architecture, and through the scheduler with chunked prefill and next to
// an ordinary sequence; the prompt cache neither serves nor keeps such a
// prompt; malformed embeddings are refused at Submit.
#include <gtest/gtest.h>

#include <cmath>
#include <future>
#include <limits>
#include <memory>

#include "engine/model/sampler.h"
#include "engine/serve/scheduler.h"
#include "support/gate.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

// Rows returns token_embd's rows of `ids`, one after the other.
std::shared_ptr<const std::vector<float>> Rows(const Model& m, const std::vector<TokenId>& ids) {
  const size_t d = static_cast<size_t>(m.config().n_embd);
  auto rows = std::make_shared<std::vector<float>>(ids.size() * d);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_TRUE(m.TokenEmbedding(ids[i], std::span(*rows).subspan(i * d, d)).ok());
  }
  return rows;
}

// Ids is `n` pseudo-random token ids in [3, n_vocab) (not the first ids:
// the special tokens of the story models).
std::vector<TokenId> Ids(const Model& m, int n, uint32_t seed) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    t.push_back(static_cast<TokenId>(3 + (seed >> 8) % static_cast<uint32_t>(m.config().n_vocab - 3)));
  }
  return t;
}

// Every architecture embeds through the same step: a batch whose entries
// alternate ids and their rows gives bit-identical logits to the ids alone,
// for float and quantized embedding tables.
TEST(PromptEmbedsTest, ForwardWithRowsEqualsForwardWithIds) {
  for (const char* name : {"stories260K-f32.gguf", "stories260K-q4_k_m.gguf", "llama3-tiny-random-q8_0.gguf",
                           "qwen2-tiny-random-q8_0.gguf", "qwen3-tiny-random-q4_k_m.gguf",
                           "phi3-tiny-random-q8_0.gguf"}) {
    SCOPED_TRACE(name);
    CLLM_SHARED_PATH(path, std::string("models/") + name);
    auto m = Model::Open(path).value();
    const auto ids = Ids(*m, 7, 5);
    const auto rows = Rows(*m, ids);
    const size_t d = static_cast<size_t>(m->config().n_embd);
    auto run = [&](bool use_rows) {
      KvCache cache(m->config(), KvType::kF16, 16);
      std::vector<BatchEntry> prefill, decode;
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        BatchEntry e{0, static_cast<int>(i), ids[i], true};
        if (use_rows && i % 2 == 0) e = {0, static_cast<int>(i), -1, true, rows->data() + i * d};
        prefill.push_back(e);
      }
      std::vector<float> logits;
      EXPECT_TRUE(m->Forward(prefill, cache, &logits).ok());
      // A decode step on top of it (the KV written from rows is read back).
      BatchEntry last{0, static_cast<int>(ids.size()) - 1, ids.back(), true};
      if (use_rows) last.embedding = rows->data() + (ids.size() - 1) * d;
      EXPECT_TRUE(m->Forward({last}, cache, &logits).ok());
      return logits;
    };
    const auto want = run(false), got = run(true);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_EQ(got.size(), ids.size() * static_cast<size_t>(m->config().n_vocab));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
  }
}

TEST(PromptEmbedsTest, TokenEmbeddingRefusesBadArguments) {
  CLLM_SHARED_PATH(path, "models/stories260K-f32.gguf");
  auto m = Model::Open(path).value();
  std::vector<float> row(static_cast<size_t>(m->config().n_embd));
  EXPECT_EQ(m->TokenEmbedding(-1, row).code(), ModelErrc::kBadBatch);
  EXPECT_EQ(m->TokenEmbedding(m->config().n_vocab, row).code(), ModelErrc::kBadBatch);
  EXPECT_EQ(m->TokenEmbedding(0, std::span(row).first(row.size() - 1)).code(), ModelErrc::kBadBatch);
  ASSERT_TRUE(m->TokenEmbedding(m->config().n_vocab - 1, row).ok());
}

struct Outcome {
  std::vector<TokenId> tokens;
  std::promise<SequenceOutcome> done;
};

SequenceRequest Request(const std::string& user, int max_tokens, const SamplingParams& sampling, Outcome* run) {
  SequenceRequest r;
  r.user = user;
  r.max_tokens = max_tokens;
  r.sampling = sampling;
  r.stop_at_eog = false;
  r.on_token = [run](TokenId id, std::string_view) {
    if (id >= 0) run->tokens.push_back(id);
    return true;
  };
  r.on_done = [run](const SequenceOutcome& o) { run->done.set_value(o); };
  return r;
}

SequenceRequest IdsRequest(const std::vector<TokenId>& ids, int max_tokens, const SamplingParams& sp, Outcome* run,
                           const std::string& user = "") {
  SequenceRequest r = Request(user, max_tokens, sp, run);
  r.prompt = ids;
  return r;
}

SequenceRequest RowsRequest(const Model& m, const std::vector<TokenId>& ids, int max_tokens, const SamplingParams& sp,
                            Outcome* run, const std::string& user = "") {
  SequenceRequest r = Request(user, max_tokens, sp, run);
  r.prompt_embeds = Rows(m, ids);
  return r;
}

SequenceOutcome Wait(Outcome& run) {
  SequenceOutcome o = run.done.get_future().get();
  EXPECT_EQ(o.finish, FinishKind::kLength) << o.error;
  return o;
}

// Through the scheduler: alone, in small prefill chunks, and in the same
// steps as an ordinary sequence, the rows give the tokens of the ids —
// greedy, and sampled with presence and frequency penalties (which count
// generated tokens only on both paths).
void CheckSchedulerAgreement(const char* model_file, const std::vector<TokenId>& ids) {
  CLLM_SHARED_PATH(path, std::string("models/") + model_file);
  auto m = Model::Open(path).value();
  SamplingParams sampled;
  sampled.temperature = 0.8f;
  sampled.seed = 42;
  sampled.presence_penalty = 0.5f;
  sampled.frequency_penalty = 0.3f;
  const int n_gen = 12;
  for (const SamplingParams& sp : {SamplingParams{}, sampled}) {
    SCOPED_TRACE(sp.temperature > 0 ? "sampled" : "greedy");
    SchedulerOptions whole;
    whole.context_length = 128;
    Scheduler plain(*m, whole);
    Outcome want;
    ASSERT_TRUE(plain.Submit(IdsRequest(ids, n_gen, sp, &want)).ok());
    EXPECT_EQ(Wait(want).prompt_tokens, static_cast<int>(ids.size()));
    ASSERT_EQ(want.tokens.size(), static_cast<size_t>(n_gen));

    Outcome alone;
    ASSERT_TRUE(plain.Submit(RowsRequest(*m, ids, n_gen, sp, &alone)).ok());
    EXPECT_EQ(Wait(alone).prompt_tokens, static_cast<int>(ids.size()));
    EXPECT_EQ(alone.tokens, want.tokens) << "alone";

    // Chunks of 3 in steps of at most 5 tokens: both sequences prefill
    // across several steps, in the same batches, and decode together.
    SchedulerOptions chunked = whole;
    chunked.prefill_chunk = 3;
    chunked.max_batch_tokens = 5;
    Scheduler mixed(*m, chunked);
    Outcome rows, other;
    const auto other_ids = Ids(*m, 9, 77);
    ASSERT_TRUE(mixed.Submit(RowsRequest(*m, ids, n_gen, sp, &rows, "u1")).ok());
    ASSERT_TRUE(mixed.Submit(IdsRequest(other_ids, n_gen, sp, &other, "u2")).ok());
    Wait(rows);
    Wait(other);
    EXPECT_EQ(rows.tokens, want.tokens) << "chunked, next to another sequence";
    Outcome other_alone;
    ASSERT_TRUE(plain.Submit(IdsRequest(other_ids, n_gen, sp, &other_alone)).ok());
    Wait(other_alone);
    EXPECT_EQ(other.tokens, other_alone.tokens) << "the ordinary sequence beside it";
  }
}

TEST(PromptEmbedsTest, SchedulerRowsGiveTheTokensOfTheIdsStories) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto m = Model::Open(path).value();
  CheckSchedulerAgreement("stories260K-f16.gguf", m->tokenizer().Encode("Tom and his mom went to the park.", true, true));
}

TEST(PromptEmbedsTest, SchedulerRowsGiveTheTokensOfTheIdsQwen3) {
  CheckSchedulerAgreement("qwen3-tiny-random-q8_0.gguf", {12522, 5193, 264, 882, 785, 2632, 5562, 311, 1490, 13});
}

// Without prompt ids, the repetition penalty sees only generated tokens:
// the scheduler gives what a plain loop gets when the sampler's history
// holds the generated tokens alone.
TEST(PromptEmbedsTest, RepetitionPenaltyCountsOnlyGeneratedTokens) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto m = Model::Open(path).value();
  const auto ids = m->tokenizer().Encode("Lily saw a big dog. The dog was big and the dog", true, true);
  const auto rows = Rows(*m, ids);
  SamplingParams sp;
  sp.repeat_penalty = 1.5f;
  const int n_gen = 16;
  // The loop: prefill the rows, then greedy with the penalty over the generated tokens.
  std::vector<TokenId> want;
  {
    const size_t d = static_cast<size_t>(m->config().n_embd);
    KvCache cache(m->config(), KvType::kF16, 64);
    std::vector<BatchEntry> batch;
    for (size_t i = 0; i < ids.size(); ++i) {
      batch.push_back({0, static_cast<int>(i), -1, i + 1 == ids.size(), rows->data() + i * d});
    }
    Sampler sampler(sp);
    std::vector<float> logits;
    for (int g = 0; g < n_gen; ++g) {
      logits.clear();
      ASSERT_TRUE(m->Forward(batch, cache, &logits).ok());
      want.push_back(sampler.Sample(logits, want, 0));
      batch = {{0, static_cast<int>(ids.size()) + g, want.back(), true}};
    }
  }
  SchedulerOptions so;
  so.context_length = 64;
  Scheduler sched(*m, so);
  Outcome got, with_ids;
  ASSERT_TRUE(sched.Submit(RowsRequest(*m, ids, n_gen, sp, &got)).ok());
  Wait(got);
  EXPECT_EQ(got.tokens, want);
  // The id path's penalty also sees the prompt ("dog", "big" repeated), and
  // on this prompt that changes the greedy tokens: the check above is not
  // vacuous.
  ASSERT_TRUE(sched.Submit(IdsRequest(ids, n_gen, sp, &with_ids)).ok());
  Wait(with_ids);
  EXPECT_NE(with_ids.tokens, want);
}

// The prompt cache is keyed on ids: a prompt given as rows is neither served
// from it (even when its rows are exactly those of a cached prompt of the
// same user) nor kept in it, so a later id prompt finds nothing of it.
TEST(PromptEmbedsTest, PromptCacheNeitherServesNorKeepsRows) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto m = Model::Open(path).value();
  SchedulerOptions so;
  so.context_length = 256;
  so.prompt_cache_bytes = 64 << 20;
  const auto ids = Ids(*m, 3 * KvCache::kBlockSize + 5, 9);
  {
    Scheduler sched(*m, so);
    Outcome rows1, ids1, rows2;
    ASSERT_TRUE(sched.Submit(RowsRequest(*m, ids, 4, {}, &rows1, "alice")).ok());
    EXPECT_EQ(Wait(rows1).cached_tokens, 0);
    EXPECT_EQ(sched.Stats().prompt_cache_bytes, 0u) << "a prompt given as rows was kept";
    ASSERT_TRUE(sched.Submit(IdsRequest(ids, 4, {}, &ids1, "alice")).ok());
    EXPECT_EQ(Wait(ids1).cached_tokens, 0);
    const uint64_t kept = sched.Stats().prompt_cache_bytes;
    EXPECT_GT(kept, 0u);  // the id prompt is kept, as usual
    ASSERT_TRUE(sched.Submit(RowsRequest(*m, ids, 4, {}, &rows2, "alice")).ok());
    EXPECT_EQ(Wait(rows2).cached_tokens, 0) << "a prompt given as rows was served from the cache";
    EXPECT_EQ(rows1.tokens, ids1.tokens);
    EXPECT_EQ(rows2.tokens, ids1.tokens);
    sched.Stop();
    const SchedulerStats s = sched.Stats();
    EXPECT_EQ(s.prompt_cache_hits, 0u);
    EXPECT_EQ(s.prompt_cache_bytes, kept);
  }
}

// Malformed embeddings are refused at Submit with a reason, and nothing of
// the refused request runs (no callback); a group with one bad member is
// refused whole.
TEST(PromptEmbedsTest, MalformedEmbeddingsAreRefused) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto m = Model::Open(path).value();
  const size_t d = static_cast<size_t>(m->config().n_embd);
  SchedulerOptions so;
  so.context_length = 32;
  Scheduler sched(*m, so);
  bool called = false;
  auto request = [&](std::vector<float> e, int max_tokens = 4) {
    SequenceRequest r;
    r.max_tokens = max_tokens;
    r.prompt_embeds = std::make_shared<const std::vector<float>>(std::move(e));
    r.on_token = [&called](TokenId, std::string_view) { return called = true; };
    r.on_done = [&called](const SequenceOutcome&) { called = true; };
    return r;
  };
  const auto good = *Rows(*m, {1, 400, 35});
  auto expect_refused = [&](SequenceRequest r, SubmitErrc code, const char* what) {
    auto got = sched.Submit(std::move(r));
    ASSERT_FALSE(got.ok()) << what;
    EXPECT_EQ(got.code(), code) << what << ": " << got.detail();
    EXPECT_FALSE(got.detail().empty()) << what;
  };
  expect_refused(request({}), SubmitErrc::kInvalid, "empty");
  expect_refused(request(std::vector<float>(good.begin(), good.end() - 1)), SubmitErrc::kInvalid, "not whole rows");
  expect_refused(request(std::vector<float>(d - 1, 0.5f)), SubmitErrc::kInvalid, "shorter than one row");
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    auto e = good;
    e[d + 3] = bad;
    expect_refused(request(e), SubmitErrc::kInvalid, "non-finite value");
  }
  expect_refused(request(std::vector<float>(33 * d, 0.1f), 0), SubmitErrc::kTooLong, "longer than the context");
  expect_refused(request(good, 30), SubmitErrc::kTooLong, "prompt + max_tokens over the context");
  expect_refused(request(good, -1), SubmitErrc::kInvalid, "negative max_tokens");
  {
    SequenceRequest both = request(good);
    both.prompt = {1, 400, 35};
    expect_refused(std::move(both), SubmitErrc::kInvalid, "ids and rows");
  }
  {
    SequenceRequest pooled = request(good, 0);
    pooled.on_embedding = [&called](std::vector<float>) { called = true; };
    expect_refused(std::move(pooled), SubmitErrc::kInvalid, "embedding sequence");
  }
  {
    std::vector<SequenceRequest> group;
    group.push_back(request(good));
    auto e = good;
    e[0] = std::numeric_limits<float>::quiet_NaN();
    group.push_back(request(e));
    auto got = sched.SubmitGroup(std::move(group));
    EXPECT_EQ(got.code(), SubmitErrc::kInvalid);
  }
  EXPECT_FALSE(called) << "a refused request ran a callback";
  // Exactly at the limit is fine, and huge finite values run without harm.
  std::promise<SequenceOutcome> done;
  SequenceRequest edge = request(std::vector<float>(28 * d, 1e30f), 4);
  edge.on_token = nullptr;
  edge.stop_at_eog = false;
  edge.on_done = [&done](const SequenceOutcome& o) { done.set_value(o); };
  ASSERT_TRUE(sched.Submit(std::move(edge)).ok());
  const SequenceOutcome o = done.get_future().get();
  EXPECT_NE(o.finish, FinishKind::kError) << o.error;
  EXPECT_EQ(o.prompt_tokens, 28);
  EXPECT_EQ(o.completion_tokens, 4);
}

// Rows wait in (locked) memory from Submit until their prefill ends: what
// one user, and all users together, hold is bounded — past a limit a Submit
// is refused as a full queue, never held — and rows go the moment their
// prompt has run, not when the sequence ends. (Before, each of a key's
// max_active + max_queued sequences could hold a context of rows.)
TEST(PromptEmbedsTest, RowsHeldAreBoundedAndLetGoAfterPrefill) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto m = Model::Open(path).value();
  SchedulerOptions so;
  so.context_length = 32;
  so.max_active = 1;
  so.max_embeds_rows = 96;       // 3 contexts
  so.max_user_embeds_rows = 64;  // 2 contexts
  Scheduler sched(*m, so);

  // A rows prompt whose first token holds the worker: its prefill is done.
  cllm::testing::Gate gate;
  std::promise<SequenceOutcome> first_done;
  SequenceRequest first;
  first.user = "A";
  first.prompt_embeds = Rows(*m, Ids(*m, 10, 1));
  std::weak_ptr<const std::vector<float>> first_rows = first.prompt_embeds;
  first.max_tokens = 3;
  first.stop_at_eog = false;
  first.on_token = [hold = gate.Holder(), once = true](TokenId, std::string_view) mutable {
    if (once) hold();
    once = false;
    return true;
  };
  first.on_done = [&first_done](const SequenceOutcome& o) { first_done.set_value(o); };
  ASSERT_TRUE(sched.Submit(std::move(first)).ok());
  ASSERT_TRUE(gate.WaitHeld());
  EXPECT_TRUE(first_rows.expired()) << "the rows outlived their prefill";
  EXPECT_EQ(sched.Stats().embeds_rows, 0);

  // Nothing runs now: what is submitted waits, holding its rows.
  std::vector<std::unique_ptr<Outcome>> runs;
  auto submit = [&](const std::string& user, int rows, int n = 1) {
    runs.push_back(std::make_unique<Outcome>());
    std::vector<SequenceRequest> group;
    auto shared = Rows(*m, Ids(*m, rows, static_cast<uint32_t>(runs.size())));
    for (int i = 0; i < n; ++i) {
      SequenceRequest r = RowsRequest(*m, {}, 2, SamplingParams{}, runs.back().get(), user);
      r.prompt_embeds = shared;
      if (i > 0) r.on_done = nullptr;  // one promise per group
      group.push_back(std::move(r));
    }
    return sched.SubmitGroup(std::move(group));
  };
  ASSERT_TRUE(submit("A", 20).ok());
  ASSERT_TRUE(submit("A", 20).ok());
  EXPECT_EQ(submit("A", 30).code(), SubmitErrc::kUserQueueFull);  // A: 70 > 64
  runs.pop_back();
  ASSERT_TRUE(submit("A", 24).ok());                              // A: 64
  ASSERT_TRUE(submit("B", 20).ok());                              // all: 84
  EXPECT_EQ(submit("B", 20).code(), SubmitErrc::kQueueFull);      // all: 104 > 96
  runs.pop_back();
  // Two choices sharing one matrix of 11 rows are charged 11, not 22.
  ASSERT_TRUE(submit("C", 11, 2).ok());                           // all: 95
  EXPECT_EQ(sched.Stats().embeds_rows, 95);
  EXPECT_EQ(submit("D", 2).code(), SubmitErrc::kQueueFull);
  runs.pop_back();

  gate.Open();
  EXPECT_EQ(first_done.get_future().get().finish, FinishKind::kLength);
  for (auto& r : runs) Wait(*r);
  // The second choice of C's group may still be finishing after the first's
  // on_done; every charge is back once the scheduler stops.
  sched.Stop();
  EXPECT_EQ(sched.Stats().embeds_rows, 0);
}

}  // namespace
}  // namespace cllm::engine
