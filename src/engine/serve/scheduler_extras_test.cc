// The scheduler's extras for the OpenAI surface: per-token logprobs taken
// from the model's own distribution (not the biased row), embedding
// sequences pooled from the final hidden states (checked against a direct
// forward pass, whatever the prefill chunking), and all-or-nothing groups.
#include <gtest/gtest.h>

#include <cmath>
#include <future>

#include "engine/serve/scheduler.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

constexpr char kModel[] = "models/stories260K-f16.gguf";

// DirectFirstStep runs `prompt` alone and returns the last position's logits
// and every position's final hidden state ([n, n_embd]).
void DirectFirstStep(const Model& m, const std::vector<TokenId>& prompt, std::vector<float>* logits,
                     std::vector<float>* hidden) {
  KvCache cache(m.config(), KvType::kF32, static_cast<int>(prompt.size()) + 1);
  std::vector<BatchEntry> batch;
  for (size_t i = 0; i < prompt.size(); ++i) {
    batch.push_back({0, static_cast<int>(i), prompt[i], i + 1 == prompt.size()});
  }
  ASSERT_TRUE(m.Forward(batch, cache, logits, hidden).ok());
}

double LogSoftmaxAt(const std::vector<float>& logits, TokenId t) {
  long double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<long double>(v));
  return static_cast<double>(logits[static_cast<size_t>(t)] - std::log(sum));
}

TEST(SchedulerLogprobsTest, ReportTheModelsDistributionBeforeBias) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = Model::Open(path).value();
  const std::vector<TokenId> prompt = model->tokenizer().Encode("Once upon a time", true, false);
  std::vector<float> logits;
  DirectFirstStep(*model, prompt, &logits, nullptr);
  // A bias forces a token the model finds unlikely; its reported logprob is
  // still the model's (well below the top alternative's).
  const TokenId forced = 100;
  SchedulerOptions so;
  so.kv_type = KvType::kF32;
  Scheduler sched(*model, so);
  SequenceRequest r;
  r.prompt = prompt;
  r.max_tokens = 3;
  r.sampling.logit_bias = {{forced, 100.0f}};
  r.top_logprobs = 5;
  std::vector<StepLogprobs> steps;
  std::vector<TokenId> tokens;
  r.on_logprobs = [&](const StepLogprobs& s) { steps.push_back(s); };
  r.on_token = [&](TokenId id, std::string_view) {
    if (id >= 0) tokens.push_back(id);
    return true;
  };
  std::promise<SequenceOutcome> done;
  r.on_done = [&](const SequenceOutcome& o) { done.set_value(o); };
  ASSERT_TRUE(sched.Submit(std::move(r)).ok());
  done.get_future().wait();
  ASSERT_EQ(steps.size(), 3u);
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(steps[0].chosen.token, forced);
  EXPECT_EQ(steps[0].chosen.piece, model->tokenizer().TokenToPiece(forced));
  EXPECT_NEAR(steps[0].chosen.logprob, LogSoftmaxAt(logits, forced), 1e-3);
  ASSERT_EQ(steps[0].top.size(), 5u);
  EXPECT_GT(steps[0].top[0].logprob, steps[0].chosen.logprob);
  for (const StepLogprobs& s : steps) {
    EXPECT_EQ(s.top.size(), 5u);
    for (size_t i = 1; i < s.top.size(); ++i) EXPECT_GE(s.top[i - 1].logprob, s.top[i].logprob);
    EXPECT_LE(s.chosen.logprob, 0.0f);
  }
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(steps[i].chosen.token, tokens[i]);
  // The top alternative of the first step is the model's argmax.
  const TokenId argmax = static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  EXPECT_EQ(steps[0].top[0].token, argmax);
  EXPECT_NEAR(steps[0].top[0].logprob, LogSoftmaxAt(logits, argmax), 1e-3);
}

std::vector<float> Embed(Scheduler& sched, const std::vector<TokenId>& prompt, EmbeddingPooling pooling) {
  SequenceRequest r;
  r.prompt = prompt;
  r.max_tokens = 0;
  r.pooling = pooling;
  std::vector<float> out;
  r.on_embedding = [&](std::vector<float> e) { out = std::move(e); };
  std::promise<SequenceOutcome> done;
  r.on_done = [&](const SequenceOutcome& o) { done.set_value(o); };
  EXPECT_TRUE(sched.Submit(std::move(r)).ok());
  EXPECT_EQ(done.get_future().get().finish, FinishKind::kEndOfGeneration);
  return out;
}

TEST(SchedulerEmbeddingTest, PoolsTheFinalHiddenStatesWhateverTheChunking) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = Model::Open(path).value();
  const size_t n_embd = static_cast<size_t>(model->config().n_embd);
  const std::vector<TokenId> prompt =
      model->tokenizer().Encode("Tom and his mom went to the park. They saw a big dog.", true, false);
  std::vector<float> logits, hidden;
  DirectFirstStep(*model, prompt, &logits, &hidden);
  ASSERT_EQ(hidden.size(), prompt.size() * n_embd);
  std::vector<double> mean(n_embd, 0.0);
  for (size_t t = 0; t < prompt.size(); ++t) {
    for (size_t i = 0; i < n_embd; ++i) mean[i] += hidden[t * n_embd + i] / static_cast<double>(prompt.size());
  }
  SchedulerOptions so;
  so.kv_type = KvType::kF32;
  so.prefill_chunk = 5;  // the prompt spans several steps
  Scheduler sched(*model, so);
  const std::vector<float> e = Embed(sched, prompt, EmbeddingPooling::kMean);
  ASSERT_EQ(e.size(), n_embd);
  for (size_t i = 0; i < n_embd; ++i) EXPECT_NEAR(e[i], mean[i], 1e-4) << i;
  const std::vector<float> last = Embed(sched, prompt, EmbeddingPooling::kLast);
  const std::vector<float> cls = Embed(sched, prompt, EmbeddingPooling::kCls);
  for (size_t i = 0; i < n_embd; ++i) {
    EXPECT_NEAR(last[i], hidden[(prompt.size() - 1) * n_embd + i], 1e-4);
    EXPECT_NEAR(cls[i], hidden[i], 1e-4);
  }
  // An embedding sequence must not generate.
  SequenceRequest bad;
  bad.prompt = prompt;
  bad.max_tokens = 1;
  bad.on_embedding = [](std::vector<float>) {};
  EXPECT_EQ(sched.Submit(std::move(bad)).code(), SubmitErrc::kInvalid);
}

TEST(SchedulerGroupTest, AGroupIsAdmittedWholeOrNotAtAll) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = Model::Open(path).value();
  Scheduler sched(*model, SchedulerOptions{});
  std::atomic<int> calls{0};
  auto group = [&](int n) {
    std::vector<SequenceRequest> g;
    for (int i = 0; i < n; ++i) {
      SequenceRequest r;
      r.user = "u";
      r.limits = UserLimits{1, 1};  // two sequences at most, running and waiting
      r.prompt = model->tokenizer().Encode("Hi", true, false);
      r.max_tokens = 2;
      r.on_token = [&](TokenId, std::string_view) {
        ++calls;
        return true;
      };
      r.on_done = [&](const SequenceOutcome&) { ++calls; };
      g.push_back(std::move(r));
    }
    return g;
  };
  auto refused = sched.SubmitGroup(group(3));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), SubmitErrc::kUserQueueFull);
  EXPECT_EQ(sched.Stats().queued, 0);
  EXPECT_EQ(calls.load(), 0);
  ASSERT_TRUE(sched.SubmitGroup(group(2)).ok());
  sched.Stop();
  EXPECT_GE(calls.load(), 2);  // both on_done ran
}

}  // namespace
}  // namespace cllm::engine
