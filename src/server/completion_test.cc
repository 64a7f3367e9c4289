// The asynchronous completion: tokens go from the scheduler's worker to the
// writer with no thread waiting; a client that goes away cancels its
// sequence (streaming or not); stop sequences, coalescing and usage.
#include "server/completion.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <future>

#include "engine/model/generator.h"
#include "support/fake_writer.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;
using testing::FakeWriter;

constexpr char kModel[] = "models/stories260K-f16.gguf";

struct Ended {
  std::promise<std::pair<engine::SequenceOutcome, bool>> done;
  Completion::Ended fn() {
    return [this](const engine::SequenceOutcome& o, bool gone) { done.set_value({o, gone}); };
  }
};

CompletionOptions Options(bool stream, bool chat = false) {
  CompletionOptions o;
  o.meta = {"cmpl-test", "stories", 1, chat};
  o.stream = stream;
  o.include_usage = stream;
  return o;
}

engine::SequenceRequest Sequence(const engine::Model& m, const std::string& prompt, int max_tokens) {
  engine::SequenceRequest sr;
  sr.user = "alice";
  sr.prompt = m.tokenizer().Encode(prompt, true, true);
  sr.max_tokens = max_tokens;
  sr.sampling.temperature = 0;
  return sr;
}

// Alone is the greedy answer to "Once upon a time" generated without the
// scheduler: what a completion must reproduce.
auto Alone(const engine::Model& m, int max_tokens) {
  engine::GenerateOptions go;
  go.max_tokens = max_tokens;
  go.sampling.temperature = 0;
  return engine::Generate(m, "Once upon a time", go).value();
}

// StreamText joins the text of a stream's events; counts its text events.
std::string StreamText(const std::vector<std::string>& writes, int* out_text_events = nullptr) {
  std::string text;
  int n = 0;
  for (const auto& w : writes) {
    if (w.rfind("data: {", 0) != 0) continue;
    auto j = json::parse(w.substr(6));
    if (!j.contains("choices") || j["choices"].empty()) continue;
    const auto& c = j["choices"][0];
    if (c.contains("text") && c["finish_reason"].is_null()) {
      text += c["text"].get<std::string>();
      ++n;
    }
  }
  if (out_text_events) *out_text_events = n;
  return text;
}

TEST(CompletionTest, StreamsTheTokensOfRunningAloneWithUsageAndDone) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = engine::Model::Open(path).value();
  const auto alone = Alone(*model, 24);
  engine::Scheduler sched(*model, {});

  for (int coalesce_ms : {0, 50}) {
    auto writer = std::make_shared<FakeWriter>();
    Ended ended;
    auto options = Options(true);
    options.coalesce = std::chrono::milliseconds(coalesce_ms);
    auto c = Completion::Create(writer, options, ended.fn());
    auto sr = Sequence(*model, "Once upon a time", 24);
    c->Attach(sr);
    ASSERT_TRUE(sched.Submit(std::move(sr)).ok());
    c->Begin();
    ASSERT_TRUE(writer->WaitComplete());
    auto [outcome, gone] = ended.done.get_future().get();
    EXPECT_FALSE(gone);
    EXPECT_EQ(writer->status(), 200);
    int events = 0;
    EXPECT_EQ(StreamText(writer->writes(), &events), alone.text) << coalesce_ms;
    if (coalesce_ms == 0) {
      EXPECT_GT(events, 10);  // one event per piece of text
    } else {
      // The timer never fired (the fake fires timers only when told): all
      // text waited and went out as one event at the end.
      EXPECT_EQ(events, 1);
      writer->RunTimers();  // a timer firing after the end sends nothing more
    }
    const auto writes = writer->writes();
    ASSERT_GE(writes.size(), 3u);
    EXPECT_EQ(writes.back(), "data: [DONE]\n\n");
    auto usage = json::parse(writes[writes.size() - 2].substr(6))["usage"];
    EXPECT_EQ(usage["completion_tokens"], static_cast<int>(alone.tokens.size()));
    EXPECT_EQ(usage["prompt_tokens"], outcome.prompt_tokens);
  }
}

TEST(CompletionTest, StopSequenceEndsTheTextAndTheGeneration) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = engine::Model::Open(path).value();
  const auto alone = Alone(*model, 40);
  ASSERT_GT(alone.text.size(), 30u);
  const std::string stop = alone.text.substr(12, 4);  // somewhere in the answer
  const std::string expect = alone.text.substr(0, alone.text.find(stop));
  engine::Scheduler sched(*model, {});
  auto writer = std::make_shared<FakeWriter>();
  Ended ended;
  auto options = Options(false);
  options.stop = {stop};
  auto c = Completion::Create(writer, options, ended.fn());
  auto sr = Sequence(*model, "Once upon a time", 40);
  c->Attach(sr);
  ASSERT_TRUE(sched.Submit(std::move(sr)).ok());
  c->Begin();
  ASSERT_TRUE(writer->WaitComplete());
  auto [outcome, gone] = ended.done.get_future().get();
  auto body = json::parse(writer->body());
  EXPECT_EQ(body["choices"][0]["text"], expect);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(outcome.finish, engine::FinishKind::kCancelled);  // generation ended at the stop
  EXPECT_LT(outcome.completion_tokens, static_cast<int>(alone.tokens.size()));
}

// With logprobs, the tokens listed are those of the returned text: a token
// that reaches into the stop sequence shows neither its logprob nor the text
// past the stop (found by review: the token that contained the stop was
// listed whole).
TEST(CompletionTest, LogprobsEndWithTheTextAtAStopSequence) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = engine::Model::Open(path).value();
  const auto alone = Alone(*model, 40);
  ASSERT_GT(alone.text.size(), 30u);
  engine::Scheduler sched(*model, {});
  for (size_t at : {12, 17, 23}) {
    for (bool stream : {false, true}) {
      const std::string stop = alone.text.substr(at, 3);
      const std::string expect = alone.text.substr(0, alone.text.find(stop));
      auto writer = std::make_shared<FakeWriter>();
      Ended ended;
      auto options = Options(stream);
      options.stop = {stop};
      options.logprobs = true;
      auto c = Completion::Create(writer, options, ended.fn());
      auto sr = Sequence(*model, "Once upon a time", 40);
      sr.top_logprobs = 1;
      c->Attach(sr);
      ASSERT_TRUE(sched.Submit(std::move(sr)).ok());
      c->Begin();
      ASSERT_TRUE(writer->WaitComplete());
      ended.done.get_future().get();
      std::string text, tokens;
      auto add = [&](const json& choice) {
        text += choice.value("text", "");
        if (!choice.contains("logprobs") || choice["logprobs"].is_null()) return;
        const auto& lp = choice["logprobs"];
        for (size_t i = 0; i < lp["tokens"].size(); ++i) {
          EXPECT_EQ(lp["text_offset"][i].get<size_t>(), tokens.size());
          tokens += lp["tokens"][i].get<std::string>();
        }
      };
      if (stream) {
        for (const auto& w : writer->writes()) {
          if (w.rfind("data: {", 0) != 0) continue;
          auto j = json::parse(w.substr(6));
          if (j.contains("choices") && !j["choices"].empty()) add(j["choices"][0]);
        }
      } else {
        add(json::parse(writer->body())["choices"][0]);
      }
      EXPECT_EQ(text, expect) << at << " " << stream;
      EXPECT_LE(tokens.size(), text.size()) << at << " " << stream << ": \"" << tokens << "\"";
      EXPECT_EQ(text.substr(0, tokens.size()), tokens) << at << " " << stream;
      EXPECT_GT(tokens.size(), 0u);
    }
  }
}

// A non-streaming client that disconnects cancels its generation: nothing
// was written to notice it by, so only the writer's client-gone callback
// can. A second sequence on the same worker plays the clock: after its
// third token the client goes away.
TEST(CompletionTest, NonStreamingClientGoneCancelsGeneration) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = engine::Model::Open(path).value();
  engine::SchedulerOptions so;
  so.context_length = 1024;
  engine::Scheduler sched(*model, so);
  auto writer = std::make_shared<FakeWriter>();
  Ended ended;
  auto c = Completion::Create(writer, Options(false), ended.fn());
  auto sr = Sequence(*model, "Once upon a time", 900);
  sr.stop_at_eog = false;  // only a cancellation ends it before 900 tokens
  c->Attach(sr);

  engine::SequenceRequest clock = Sequence(*model, "The little dog", 50);
  clock.user = "bob";
  clock.stop_at_eog = false;
  clock.on_token = [writer, n = 0](engine::TokenId, std::string_view) mutable {
    if (++n == 3) writer->GoClientGone();
    return true;
  };
  ASSERT_TRUE(sched.Submit(std::move(clock)).ok());
  ASSERT_TRUE(sched.Submit(std::move(sr)).ok());
  c->Begin();
  auto [outcome, gone] = ended.done.get_future().get();
  EXPECT_TRUE(gone);
  EXPECT_EQ(outcome.finish, engine::FinishKind::kCancelled);
  EXPECT_LE(outcome.completion_tokens, 5) << "generation went on after the client had gone";
  EXPECT_EQ(writer->responses(), 0);  // nobody to answer
}

TEST(CompletionTest, StreamingClientGoneCancelsGeneration) {
  CLLM_SHARED_PATH(path, kModel);
  auto model = engine::Model::Open(path).value();
  engine::SchedulerOptions so;
  so.context_length = 1024;
  engine::Scheduler sched(*model, so);
  auto writer = std::make_shared<FakeWriter>();
  writer->fail_writes_after = 4;  // role event + 3 text events, then the write fails
  Ended ended;
  auto c = Completion::Create(writer, Options(true, /*chat=*/true), ended.fn());
  auto sr = Sequence(*model, "Once upon a time", 900);
  sr.stop_at_eog = false;
  c->Attach(sr);
  ASSERT_TRUE(sched.Submit(std::move(sr)).ok());
  c->Begin();
  auto [outcome, gone] = ended.done.get_future().get();
  EXPECT_TRUE(gone);
  EXPECT_EQ(outcome.finish, engine::FinishKind::kCancelled);
  EXPECT_LE(outcome.completion_tokens, 8);
}

}  // namespace
}  // namespace cllm::server
