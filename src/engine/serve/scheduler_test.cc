// Continuous batching: every sequence gets exactly the tokens it gets when
// run alone, whatever else shares its steps; limits and cancellation;
// fairness between users (round-robin admission, per-user limits).
#include "engine/serve/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "engine/model/generator.h"
#include "support/gate.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

struct Collected {
  std::vector<TokenId> tokens;
  std::string text;
  std::promise<SequenceOutcome> done;
};

SequenceRequest Request(const Model& m, const std::string& prompt, int max_tokens, Collected* c,
                        SamplingParams sampling = {}, std::string user = "") {
  SequenceRequest r;
  r.user = std::move(user);
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

using cllm::testing::Gate;

// Blocker is a request whose first token holds the worker at `gate`.
SequenceRequest Blocker(const Model& m, const std::string& user, const Gate& gate,
                        std::promise<SequenceOutcome>* done) {
  SequenceRequest r;
  r.user = user;
  r.prompt = m.tokenizer().Encode("Once upon a time", true, true);
  r.max_tokens = 2;
  r.stop_at_eog = false;  // its first token always comes, so the gate is always reached
  r.on_token = [hold = gate.Holder(), first = true](TokenId, std::string_view) mutable {
    if (first) hold();
    first = false;
    return true;
  };
  r.on_done = [done](const SequenceOutcome& o) { done->set_value(o); };
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
  so.user_limits = {2, 4};  // three users with two sequences each: per-user queues in play
  Scheduler sched(*model, so);
  std::vector<std::unique_ptr<Collected>> got;
  for (size_t i = 0; i < prompts.size(); ++i) {
    got.push_back(std::make_unique<Collected>());
    SamplingParams sp;
    sp.temperature = i % 2 ? 0.8f : 0.0f;
    sp.seed = 1000 + i;
    ASSERT_TRUE(sched.Submit(Request(*model, prompts[i], 24 + static_cast<int>(i) * 3, got.back().get(), sp,
                                     "user" + std::to_string(i % 3)))
                    .ok());
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
  so.user_limits = {1, 1};
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
  ASSERT_TRUE(sched.Submit(Request(*model, "Hi", 50, &b, {}, "b")).ok());  // waits: one slot
  Collected c;
  EXPECT_EQ(sched.Submit(Request(*model, "Hi", 5, &c, {}, "c")).code(), SubmitErrc::kQueueFull);
  EXPECT_EQ(sched.Stats().rejected, 1u);
  EXPECT_EQ(sched.Stats().rejected_user, 0u);
  sched.Stop();
  EXPECT_EQ(a.done.get_future().get().finish, FinishKind::kCancelled);
  EXPECT_EQ(b.done.get_future().get().finish, FinishKind::kCancelled);
  EXPECT_EQ(sched.Submit(Request(*model, "Hi", 5, &c)).code(), SubmitErrc::kStopped);
}

// The fairness test: while user A keeps 64 requests waiting, user
// B's single request starts within one scheduling round. One slot, so
// admission order is the whole story; A refills its queue from every
// on_done, so its backlog never shrinks.
TEST(SchedulerFairnessTest, OneUsersBacklogDelaysAnotherByAtMostOneRound) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  SchedulerOptions so;
  so.max_active = 1;
  so.user_limits = {1, 64};
  Scheduler sched(*model, so);
  Gate gate;
  std::promise<SequenceOutcome> first_done;
  ASSERT_TRUE(sched.Submit(Blocker(*model, "A", gate, &first_done)).ok());
  ASSERT_TRUE(gate.WaitHeld());  // A's first request runs and holds the worker

  std::vector<SequenceOutcome> a_outcomes;  // written on the worker; read after Stop joins it
  std::atomic<int> a_served{0};             // A's finished, admitted requests (read while running)
  int a_submitted = 1;
  std::function<SequenceRequest()> make_a = [&] {
    SequenceRequest r;
    r.user = "A";
    r.prompt = model->tokenizer().Encode("The little dog", true, true);
    r.max_tokens = 2;
    r.on_done = [&](const SequenceOutcome& o) {
      a_outcomes.push_back(o);
      if (o.admission >= 0 && o.finish != FinishKind::kCancelled) a_served.fetch_add(1);
      if (o.finish != FinishKind::kCancelled && a_submitted < 400 && sched.Submit(make_a()).ok()) ++a_submitted;
    };
    return r;
  };
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(sched.Submit(make_a()).ok()) << i;
    ++a_submitted;
  }
  EXPECT_EQ(sched.Submit(make_a()).code(), SubmitErrc::kUserQueueFull);  // 1 running + 64 waiting
  Collected b;
  ASSERT_TRUE(sched.Submit(Request(*model, "Hi", 2, &b, {}, "B")).ok());  // A's backlog does not refuse B
  EXPECT_EQ(sched.Stats().queued, 65);
  gate.Open();
  const SequenceOutcome b_out = b.done.get_future().get();
  const SequenceOutcome a_first = first_done.get_future().get();
  // At most one of A's ran before B, so a second finished one ran after it.
  // Wait for it before stopping (a slow run, e.g. under ASan, may not have
  // admitted it yet when B finishes).
  for (int i = 0; i < 10000 && a_served.load() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  sched.Stop();

  // A's first request had the slot; at most one more of A's (the round
  // already under way when B arrived) may start before B.
  EXPECT_EQ(a_first.admission, 0);
  EXPECT_NE(b_out.finish, FinishKind::kCancelled);
  ASSERT_GE(b_out.admission, 1);
  EXPECT_LE(b_out.admission, 2) << "B waited behind " << b_out.admission << " of A's requests";
  int a_before_b = 0, a_after_b = 0;
  for (const auto& o : a_outcomes) {
    if (o.admission < 0) continue;
    (o.admission < b_out.admission ? a_before_b : a_after_b)++;
  }
  EXPECT_LE(a_before_b, 1);
  EXPECT_GT(a_after_b, 0);  // A kept being served after B: fair, not B-first
}

// A client that leaves while its request waits (or prefills) must not cost
// a slot or a prefill: on_token, which could say "stop", first runs after
// the whole prompt. The cancel flag is checked before every step.
TEST(SchedulerTest, CancelledWaitingSequenceIsDroppedWithoutASlotOrAStep) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  SchedulerOptions so;
  so.max_active = 1;
  Scheduler sched(*model, so);
  Gate gate;
  std::promise<SequenceOutcome> first_done;
  ASSERT_TRUE(sched.Submit(Blocker(*model, "A", gate, &first_done)).ok());
  ASSERT_TRUE(gate.WaitHeld());  // the only slot is busy: what follows waits

  auto cancel = std::make_shared<std::atomic<bool>>(false);
  Collected gone;
  SequenceRequest r = Request(*model, "Once upon a time there was a long prompt", 8, &gone, {}, "B");
  r.cancelled = cancel;
  ASSERT_TRUE(sched.Submit(std::move(r)).ok());
  Collected next;
  ASSERT_TRUE(sched.Submit(Request(*model, "Hi", 2, &next, {}, "C")).ok());
  cancel->store(true);  // B's client goes away while B waits
  gate.Open();
  const SequenceOutcome out = gone.done.get_future().get();
  const SequenceOutcome c_out = next.done.get_future().get();
  first_done.get_future().get();
  sched.Stop();

  EXPECT_EQ(out.finish, FinishKind::kCancelled);
  EXPECT_EQ(out.admission, -1) << "a cancelled waiting sequence took a slot";
  EXPECT_EQ(out.completion_tokens, 0);
  EXPECT_TRUE(gone.tokens.empty());
  EXPECT_NE(c_out.finish, FinishKind::kCancelled);
  EXPECT_EQ(c_out.admission, 1);  // C got the slot B would have taken
  EXPECT_EQ(sched.Stats().prompt_tokens,
            static_cast<uint64_t>(model->tokenizer().Encode("Once upon a time", true, true).size() +
                                  model->tokenizer().Encode("Hi", true, true).size()))
      << "the cancelled prompt was prefilled";
}

TEST(SchedulerFairnessTest, PerUserLimitsRefuseTypedAndHoldWhileSlotsAreFree) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  SchedulerOptions so;
  so.max_active = 5;
  so.user_limits = {1, 0};  // one running request per user, none waiting
  Scheduler sched(*model, so);
  {
    Gate gate;
    std::promise<SequenceOutcome> a1_done;
    ASSERT_TRUE(sched.Submit(Blocker(*model, "A", gate, &a1_done)).ok());
    ASSERT_TRUE(gate.WaitHeld());
    Collected a2, a3, b1;
    EXPECT_EQ(sched.Submit(Request(*model, "Hi", 2, &a2, {}, "A")).code(), SubmitErrc::kUserActiveLimit);
    // A request may carry its user's own limits (an API key's), overriding the defaults.
    auto wider = Request(*model, "Hi", 2, &a3, {}, "A");
    wider.limits = UserLimits{1, 1};
    ASSERT_TRUE(sched.Submit(std::move(wider)).ok());
    auto again = Request(*model, "Hi", 2, &a2, {}, "A");
    again.limits = UserLimits{1, 1};
    EXPECT_EQ(sched.Submit(std::move(again)).code(), SubmitErrc::kUserQueueFull);
    ASSERT_TRUE(sched.Submit(Request(*model, "Hi", 2, &b1, {}, "B")).ok());  // another user is not limited by A
    EXPECT_EQ(sched.Stats().rejected_user, 2u);
    EXPECT_EQ(sched.Stats().users, 2);
    gate.Open();
    EXPECT_NE(a1_done.get_future().get().finish, FinishKind::kCancelled);
    EXPECT_NE(a3.done.get_future().get().finish, FinishKind::kCancelled);
    EXPECT_NE(b1.done.get_future().get().finish, FinishKind::kCancelled);
  }
  // With slots free, user C still runs one sequence at a time (its tokens
  // never interleave), while D's three run together. Everything is queued
  // behind a gate first, so the outcome does not depend on timing.
  int c_running = 0, c_max = 0, d_running = 0, d_max = 0;  // touched on the worker only
  std::vector<std::unique_ptr<Collected>> got;
  auto counted = [&](const std::string& user, int* running, int* max) {
    got.push_back(std::make_unique<Collected>());
    auto r = Request(*model, "Once upon a time", 8, got.back().get(), {}, user);
    r.stop_at_eog = false;
    r.limits = UserLimits{user == "C" ? 1 : 3, 2};
    r.on_token = [running, max, started = false](TokenId, std::string_view) mutable {
      if (!started) *max = std::max(*max, ++*running);
      started = true;
      return true;
    };
    r.on_done = [running, c = got.back().get()](const SequenceOutcome& o) {
      --*running;
      c->done.set_value(o);
    };
    return r;
  };
  Gate gate;
  std::promise<SequenceOutcome> g_done;
  ASSERT_TRUE(sched.Submit(Blocker(*model, "G", gate, &g_done)).ok());
  ASSERT_TRUE(gate.WaitHeld());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sched.Submit(counted("C", &c_running, &c_max)).ok());
    ASSERT_TRUE(sched.Submit(counted("D", &d_running, &d_max)).ok());
  }
  gate.Open();
  for (auto& c : got) EXPECT_EQ(c->done.get_future().get().finish, FinishKind::kLength);
  sched.Stop();
  EXPECT_EQ(c_max, 1);
  EXPECT_EQ(d_max, 3);
  EXPECT_EQ(sched.Stats().users, 0);  // nothing kept for users who left
}

// A thousand users with one request each fit the default queue: per-user
// limits, not a small global queue, stop one user from filling it.
TEST(SchedulerFairnessTest, AThousandUsersFitTheDefaultQueue) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  auto model = Model::Open(path).value();
  Scheduler sched(*model, SchedulerOptions{});
  Gate gate;
  std::promise<SequenceOutcome> first_done;
  ASSERT_TRUE(sched.Submit(Blocker(*model, "first", gate, &first_done)).ok());
  ASSERT_TRUE(gate.WaitHeld());
  const auto prompt = model->tokenizer().Encode("Hi", true, true);
  for (int u = 0; u < 1000; ++u) {
    SequenceRequest r;
    r.user = "user" + std::to_string(u);
    r.prompt = prompt;
    r.max_tokens = 1;
    ASSERT_TRUE(sched.Submit(std::move(r)).ok()) << "user " << u;
  }
  EXPECT_EQ(sched.Stats().users, 1001);
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    gate.Open();
  });
  sched.Stop();  // cancels whatever has not run; every on_done still fires
  opener.join();
  EXPECT_EQ(sched.Stats().completed, 1001u);
  EXPECT_EQ(sched.Stats().rejected, 0u);
}

}  // namespace
}  // namespace cllm::engine
