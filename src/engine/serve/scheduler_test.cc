// Continuous batching: every sequence gets exactly the tokens it gets when
// run alone, whatever else shares its steps; limits and cancellation.
#include "engine/serve/scheduler.h"

#include <gtest/gtest.h>

#include <future>

#include "engine/model/generator.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

struct Collected {
  std::vector<TokenId> tokens;
  std::string text;
  std::promise<SequenceOutcome> done;
};

SequenceRequest Request(const Model& m, const std::string& prompt, int max_tokens, Collected* c,
                        SamplingParams sampling = {}) {
  SequenceRequest r;
  r.prompt = m.tokenizer().Encode(prompt, true, true);
  r.max_tokens = max_tokens;
  r.sampling = sampling;
  r.on_token = [c](TokenId id, std::string_view text) {
    if (id >= 0) c->tokens.push_back(id);
    c->text += text;
    return true;
  };
  r.on_done = [c](const SequenceOutcome& o) { c->done.set_value(o); };
  return r;
}

TEST(SchedulerTest, BatchedSequencesMatchRunningAlone) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Lily wanted to",
                                            "One day, a big", "Tom and his mom went to the park. They saw",
                                            "Hi"};
  // Alone: the single-sequence generator, greedy and sampled.
  std::vector<GenerateResult> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateOptions o;
    o.max_tokens = 24 + static_cast<int>(i) * 3;  // different lengths: sequences leave at different steps
    o.sampling.temperature = i % 2 ? 0.8f : 0.0f;
    o.sampling.seed = 1000 + i;
    alone.push_back(Generate(*model, prompts[i], o).value());
  }
  // Together: small chunks and budget so prefill and decode mix across steps,
  // and fewer slots than sequences so some wait in the queue.
  SchedulerOptions so;
  so.max_active = 4;
  so.prefill_chunk = 3;
  so.max_batch_tokens = 8;
  Scheduler sched(*model, so);
  std::vector<std::unique_ptr<Collected>> got;
  for (size_t i = 0; i < prompts.size(); ++i) {
    got.push_back(std::make_unique<Collected>());
    SamplingParams sp;
    sp.temperature = i % 2 ? 0.8f : 0.0f;
    sp.seed = 1000 + i;
    ASSERT_TRUE(sched.Submit(Request(*model, prompts[i], 24 + static_cast<int>(i) * 3, got.back().get(), sp)).ok());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    SequenceOutcome o = got[i]->done.get_future().get();
    EXPECT_NE(o.finish, FinishKind::kError) << o.error;
    EXPECT_EQ(got[i]->tokens, alone[i].tokens) << "sequence " << i;
    EXPECT_EQ(got[i]->text, alone[i].text) << "sequence " << i;
    EXPECT_EQ(o.completion_tokens, static_cast<int>(alone[i].tokens.size()));
  }
  sched.Stop();  // on_done runs before the completed counter moves
  auto stats = sched.Stats();
  EXPECT_EQ(stats.completed, prompts.size());
  EXPECT_GT(stats.steps, 0u);
}

TEST(SchedulerTest, LimitsCancellationAndShutdown) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  SchedulerOptions so;
  so.max_active = 1;
  so.max_queued = 1;
  so.context_length = 64;
  Scheduler sched(*model, so);
  Collected too_long;
  EXPECT_EQ(sched.Submit(Request(*model, "Once upon a time", 100, &too_long)).code(), SubmitErrc::kTooLong);
  SequenceRequest empty;
  EXPECT_EQ(sched.Submit(std::move(empty)).code(), SubmitErrc::kInvalid);

  // A consumer that cancels after 3 tokens.
  Collected cancelled;
  auto r = Request(*model, "Once upon a time", 40, &cancelled);
  r.on_token = [&](TokenId id, std::string_view) {
    if (id >= 0) cancelled.tokens.push_back(id);
    return cancelled.tokens.size() < 3;
  };
  ASSERT_TRUE(sched.Submit(std::move(r)).ok());
  EXPECT_EQ(cancelled.done.get_future().get().finish, FinishKind::kCancelled);
  EXPECT_EQ(cancelled.tokens.size(), 3u);

  // Stop cancels what is running and queued; on_done still fires once each.
  Collected a, b;
  auto slow = Request(*model, "Once upon a time", 50, &a);
  slow.on_token = [](TokenId, std::string_view) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return true;
  };
  ASSERT_TRUE(sched.Submit(std::move(slow)).ok());
  for (int i = 0; i < 2000 && sched.Stats().queued > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(sched.Stats().active, 1);
  ASSERT_TRUE(sched.Submit(Request(*model, "Hi", 50, &b)).ok());  // waits: one slot
  Collected c;
  EXPECT_EQ(sched.Submit(Request(*model, "Hi", 5, &c)).code(), SubmitErrc::kQueueFull);
  EXPECT_EQ(sched.Stats().rejected, 1u);
  sched.Stop();
  EXPECT_EQ(a.done.get_future().get().finish, FinishKind::kCancelled);
  EXPECT_EQ(b.done.get_future().get().finish, FinishKind::kCancelled);
  EXPECT_EQ(sched.Submit(Request(*model, "Hi", 5, &c)).code(), SubmitErrc::kStopped);
}

}  // namespace
}  // namespace cllm::engine
