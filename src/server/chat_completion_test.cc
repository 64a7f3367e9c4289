// Chat replies through a Completion, driven by a scripted token source (the
// callbacks Attach installs, called as the scheduler would): tool calls
// become message.tool_calls / streamed tool_call deltas with finish_reason
// "tool_calls", reasoning becomes reasoning_content, stop sequences never
// cut a call, a call cut by max_tokens is text. Then the service over the
// random-weight Qwen3 model: tools accepted, what it cannot do refused.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/chat_output_plan.h"
#include "server/completion.h"
#include "server/service.h"
#include "support/fake_writer.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;
using testing::FakeWriter;

constexpr char kQwen3[] = "models/qwen3-tiny-random-q8_0.gguf";

const std::string kQwenReply =
    "<think>\nThe user wants the weather.\n</think>\n\n"
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
    "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";

CompletionOptions ChatOptions(bool stream, ToolCallFormat tools = ToolCallFormat::kHermes) {
  CompletionOptions o;
  o.meta = {"chatcmpl-test", "qwen3", 1, /*chat=*/true};
  o.stream = stream;
  OutputParserOptions p;
  p.format = {tools, /*think_tags=*/true};
  p.parse_tools = true;
  o.output = p;
  return o;
}

// Play feeds `text` in pieces of `step` bytes, then ends the sequence.
void Play(const std::shared_ptr<Completion>& c, const std::string& text, size_t step,
          engine::FinishKind finish = engine::FinishKind::kEndOfGeneration) {
  engine::SequenceRequest sr;
  c->Attach(sr);
  c->Begin();
  int n = 0;
  for (size_t i = 0; i < text.size(); i += step, ++n) {
    if (!sr.on_token(7, std::string_view(text).substr(i, step))) break;
  }
  engine::SequenceOutcome o;
  o.finish = finish;
  o.prompt_tokens = 10;
  o.completion_tokens = n;
  sr.on_done(o);
}

// Accumulated is what an OpenAI client builds from a stream's chunks.
struct Accumulated {
  std::string content, reasoning, finish;
  json tool_calls = json::array();
  bool role = false, done = false;
};

Accumulated Accumulate(const std::vector<std::string>& writes) {
  Accumulated a;
  for (const auto& w : writes) {
    if (w == "data: [DONE]\n\n") {
      a.done = true;
      continue;
    }
    auto j = json::parse(w.substr(6));
    const auto& c = j["choices"][0];
    const auto& d = c["delta"];
    if (d.contains("role")) a.role = true;
    if (d.contains("content")) a.content += d["content"].get<std::string>();
    if (d.contains("reasoning_content")) a.reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("tool_calls")) {
      for (const auto& t : d["tool_calls"]) {
        size_t i = t["index"];
        if (i == a.tool_calls.size()) {
          // A call's first delta carries its id, type and name.
          EXPECT_TRUE(t.contains("id") && t["type"] == "function" && t["function"].contains("name")) << w;
          a.tool_calls.push_back({{"id", t["id"]}, {"name", t["function"]["name"]}, {"arguments", ""}});
        }
        a.tool_calls[i]["arguments"] = a.tool_calls[i]["arguments"].get<std::string>() +
                                       t["function"]["arguments"].get<std::string>();
      }
    }
    if (!c["finish_reason"].is_null()) a.finish = c["finish_reason"];
  }
  return a;
}

TEST(ChatCompletionTest, ToolCallsAndReasoningInTheMessage) {
  for (size_t step : {1, 3, 1000}) {
    auto writer = std::make_shared<FakeWriter>();
    auto c = Completion::Create(writer, ChatOptions(false));
    Play(c, kQwenReply, step);
    ASSERT_EQ(writer->status(), 200);
    auto body = json::parse(writer->body());
    const auto& choice = body["choices"][0];
    EXPECT_EQ(choice["finish_reason"], "tool_calls");
    const auto& m = choice["message"];
    EXPECT_TRUE(m["content"].is_null()) << m;
    EXPECT_EQ(m["reasoning_content"], "The user wants the weather.");
    ASSERT_EQ(m["tool_calls"].size(), 2u);
    const auto& call = m["tool_calls"][0];
    EXPECT_EQ(call["type"], "function");
    EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
    EXPECT_NE(call["id"], m["tool_calls"][1]["id"]);
    EXPECT_EQ(call["function"]["name"], "get_weather");
    EXPECT_EQ(json::parse(call["function"]["arguments"].get<std::string>()), json({{"city", "Paris"}}));
    EXPECT_EQ(m["tool_calls"][1]["function"]["name"], "get_time");
  }
}

TEST(ChatCompletionTest, StreamsToolCallDeltasAsOpenAiDoes) {
  for (size_t step : {1, 5}) {
    auto writer = std::make_shared<FakeWriter>();
    auto c = Completion::Create(writer, ChatOptions(true));
    Play(c, kQwenReply, step);
    auto writes = writer->writes();
    Accumulated a = Accumulate(writes);
    EXPECT_TRUE(a.role);
    EXPECT_TRUE(a.done);
    EXPECT_EQ(a.finish, "tool_calls");
    EXPECT_EQ(a.content, "");
    EXPECT_EQ(a.reasoning, "The user wants the weather.");
    ASSERT_EQ(a.tool_calls.size(), 2u);
    EXPECT_EQ(a.tool_calls[1]["name"], "get_time");
    EXPECT_EQ(json::parse(a.tool_calls[0]["arguments"].get<std::string>()), json({{"city", "Paris"}}));
    // No event leaks markup into the content.
    for (const auto& w : writes) EXPECT_EQ(w.find("tool_call>"), std::string::npos) << w;
  }
}

TEST(ChatCompletionTest, StopSequencesApplyToContentOnly) {
  auto options = ChatOptions(false);
  options.stop = {"Paris"};
  auto writer = std::make_shared<FakeWriter>();
  auto c = Completion::Create(writer, options);
  Play(c, kQwenReply + "\nDone in Paris, bye", 2);
  auto m = json::parse(writer->body())["choices"][0]["message"];
  ASSERT_EQ(m["tool_calls"].size(), 2u);  // "Paris" inside the calls does not stop them
  EXPECT_EQ(m["content"], "Done in ");    // in the content it does
}

TEST(ChatCompletionTest, ACallCutByMaxTokensIsTextWithFinishLength) {
  auto writer = std::make_shared<FakeWriter>();
  auto c = Completion::Create(writer, ChatOptions(false));
  const std::string cut = "<tool_call>\n{\"name\": \"get_weather\", \"argu";
  Play(c, cut, 4, engine::FinishKind::kLength);
  auto choice = json::parse(writer->body())["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(choice["message"]["content"], cut);
  EXPECT_FALSE(choice["message"].contains("tool_calls"));
}

TEST(ChatCompletionTest, ControlTokenMarkersReachTheParser) {
  // Mistral's [TOOL_CALLS] is a control token: its piece is empty.
  auto options = ChatOptions(false, ToolCallFormat::kMistral);
  options.marker_tokens[5] = "[TOOL_CALLS]";
  auto writer = std::make_shared<FakeWriter>();
  auto c = Completion::Create(writer, options);
  engine::SequenceRequest sr;
  c->Attach(sr);
  c->Begin();
  ASSERT_TRUE(sr.on_token(5, ""));
  ASSERT_TRUE(sr.on_token(6, "[{\"name\": \"f\", \"arguments\": {}}]"));
  engine::SequenceOutcome o;
  o.finish = engine::FinishKind::kEndOfGeneration;
  sr.on_done(o);
  auto m = json::parse(writer->body())["choices"][0]["message"];
  ASSERT_EQ(m["tool_calls"].size(), 1u);
  EXPECT_EQ(m["tool_calls"][0]["id"].get<std::string>().size(), 9u);  // Mistral's id length
}

TEST(ChatCompletionTest, PlainChatKeepsItsShape) {
  // No reasoning and no calls: the body and events are those of plain text.
  auto writer = std::make_shared<FakeWriter>();
  auto c = Completion::Create(writer, ChatOptions(true));
  Play(c, "Hello <b>there</b>", 2);
  Accumulated a = Accumulate(writer->writes());
  EXPECT_EQ(a.content, "Hello <b>there</b>");
  EXPECT_EQ(a.finish, "stop");
  writer = std::make_shared<FakeWriter>();
  c = Completion::Create(writer, ChatOptions(false));
  Play(c, "Hi", 1);
  auto m = json::parse(writer->body())["choices"][0]["message"];
  EXPECT_EQ(m["content"], "Hi");
  EXPECT_FALSE(m.contains("reasoning_content"));
}

// --- the service over the Qwen3 random-weight model ---------------------------

class ToolServiceTest : public ::testing::Test {
 protected:
  void Start() {
    model_ = engine::Model::Open(testing::SharedDir() / kQwen3).value();
    ServiceOptions so;
    so.model_name = "qwen3";
    service_ = std::make_unique<Service>(*model_, so);
  }
  std::shared_ptr<FakeWriter> Chat(json body, int max_tokens = 8) {
    body["messages"] = json::array({{{"role", "user"}, {"content", "Weather in Paris?"}}});
    body["max_tokens"] = max_tokens;
    body["temperature"] = 0;
    net::Request r;
    r.method = "POST";
    r.target = "/v1/chat/completions";
    r.body = body.dump();
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(r, w);
    EXPECT_TRUE(w->WaitComplete());
    return w;
  }
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<Service> service_;
};

const json kTools = json::parse(R"([{"type":"function","function":{"name":"get_weather",
  "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])");

TEST_F(ToolServiceTest, AcceptsToolsAuto) {
  CLLM_SHARED_PATH(path, kQwen3);
  Start();
  auto ok = Chat({{"tools", kTools}, {"tool_choice", "auto"}});
  EXPECT_EQ(ok->status(), 200) << ok->body();
  auto choice = json::parse(ok->body())["choices"][0];
  EXPECT_TRUE(choice["finish_reason"] == "length" || choice["finish_reason"] == "stop" ||
              choice["finish_reason"] == "tool_calls");
  auto none = Chat({{"tools", kTools}, {"tool_choice", "none"}, {"stream", true}});
  EXPECT_EQ(none->status(), 200);
  // One constraint per reply: a forced call and response_format do not combine.
  auto both = Chat({{"tools", kTools}, {"tool_choice", "required"}, {"response_format", {{"type", "json_object"}}}});
  EXPECT_EQ(both->status(), 400);
  EXPECT_NE(both->body().find("response_format"), std::string::npos);
}

// A named tool_choice: the grammar makes even a random-weight
// model call the tool, so the reply is a tool call with valid arguments.
TEST_F(ToolServiceTest, NamedToolChoiceForcesACall) {
  CLLM_SHARED_PATH(path, kQwen3);
  Start();
  json tools = kTools;
  tools.push_back(json::parse(R"({"type":"function","function":{"name":"get_time",
    "parameters":{"type":"object","properties":{"tz":{"type":"string","maxLength":8}},"required":["tz"]}}})"));
  const json named = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  // One streamed request naming a function (the grammar's masks over
  // Qwen3's 151k tokens are the test's cost, and it runs under ASan too);
  // "required" builds the same kind of constraint (ChatOutputPlannerTest).
  for (const auto& [choice, stream] : {std::pair{named, true}}) {
    {
      json body = {{"tools", tools}, {"tool_choice", choice}, {"stream", stream}};
      body["max_tokens"] = 128;  // the grammar allows whitespace between tokens: room for it
      body["messages"] = json::array({{{"role", "user"}, {"content", "What time is it?"}}});
      net::Request r;
      r.method = "POST";
      r.target = "/v1/chat/completions";
      r.body = body.dump();
      auto w = std::make_shared<FakeWriter>();
      service_->Handle(r, w);
      ASSERT_TRUE(w->WaitComplete());
      ASSERT_EQ(w->status(), 200) << w->body();
      json calls;
      std::string finish;
      if (stream) {
        Accumulated a = Accumulate(w->writes());
        calls = a.tool_calls;
        finish = a.finish;
        EXPECT_EQ(a.content, "");
      } else {
        auto c = json::parse(w->body())["choices"][0];
        finish = c["finish_reason"];
        calls = json::array();
        for (const auto& t : c["message"]["tool_calls"]) {
          calls.push_back({{"name", t["function"]["name"]}, {"arguments", t["function"]["arguments"]}});
        }
      }
      EXPECT_EQ(finish, "tool_calls") << choice << " stream " << stream;
      ASSERT_EQ(calls.size(), 1u) << choice << " stream " << stream;
      if (choice.is_object()) {
        EXPECT_EQ(calls[0]["name"], "get_time");
      }
      auto args = json::parse(calls[0]["arguments"].get<std::string>());
      EXPECT_TRUE(args.is_object());
      if (calls[0]["name"] == "get_time") {
        EXPECT_TRUE(args["tz"].is_string());
      }
    }
  }
}

// n choices each get their own matcher: one constraint shared by the
// choices' sequences would see every choice's tokens in turn (the masks of
// choice 1 computed from choice 0's state), so the answers would not follow
// the schema. At temperature 0 the choices are the same valid JSON.
TEST_F(ToolServiceTest, EachChoiceFollowsTheSchemaWithItsOwnMatcher) {
  CLLM_SHARED_PATH(path, kQwen3);
  Start();
  const json schema = json::parse(R"({"type":"object","properties":{"a":{"enum":["x","yz"]}},"required":["a"],
                                      "additionalProperties":false})");
  auto w = Chat({{"n", 2}, {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "s"}, {"schema", schema}}}}}},
                /*max_tokens=*/64);
  ASSERT_EQ(w->status(), 200) << w->body();
  const json choices = json::parse(w->body())["choices"];
  ASSERT_EQ(choices.size(), 2u) << w->body();
  for (const auto& c : choices) {
    const std::string content = c["message"]["content"].get<std::string>();
    EXPECT_EQ(c["finish_reason"], "stop") << content;
    const json v = json::parse(content, nullptr, false);
    ASSERT_TRUE(v.is_object()) << content;
    EXPECT_TRUE(v["a"] == "x" || v["a"] == "yz") << content;
  }
  EXPECT_EQ(choices[0]["message"]["content"], choices[1]["message"]["content"]);
}

TEST(ChatOutputPlannerTest, Qwen3TemplateAndVocabulary) {
  CLLM_SHARED_PATH(path, kQwen3);
  auto model = engine::Model::Open(path).value();
  ChatOutputPlanner planner(model->file().GetString("tokenizer.chat_template").value(), model->tokenizer());
  EXPECT_EQ(planner.format().tools, ToolCallFormat::kHermes);
  EXPECT_TRUE(planner.format().think_tags);
  CompletionRequest req;
  req.tools = kTools;
  auto plan = planner.Plan(req, "<|im_start|>assistant\n");
  ASSERT_TRUE(plan.ok()) << plan.detail();
  EXPECT_TRUE(plan->parse_tools);
  EXPECT_FALSE(plan->starts_in_reasoning);
  EXPECT_TRUE(planner.Plan(req, "<|im_start|>assistant\n<think>\n").value().starts_in_reasoning);
  req.parallel_tool_calls = false;
  EXPECT_EQ(planner.Plan(req, "").value().max_tool_calls, 1u);
  req.tool_choice = "required";
  EXPECT_TRUE(planner.Plan(req, "").ok());
  auto forced = planner.ToolChoiceConstraint(req, model->tokenizer());
  ASSERT_TRUE(forced.ok()) << forced.detail();
  EXPECT_NE(*forced, nullptr);
  req.tool_choice = "auto";
  EXPECT_EQ(planner.ToolChoiceConstraint(req, model->tokenizer()).value(), nullptr);
  // GLM's calls are not JSON: required is refused there.
  ChatOutputPlanner glm("<tool_call>{name}<arg_key>", model->tokenizer());
  req.tool_choice = "required";
  EXPECT_EQ(glm.ToolChoiceConstraint(req, model->tokenizer()).code(), ApiErrc::kBadRequest);
}

// The vocabulary index a forced tool call walks is built once and kept by
// the planner, not rebuilt for each request once the last constraint is
// gone (found by review: rebuilt per request, serialized on one lock).
TEST(ChatOutputPlannerTest, AForcedToolCallKeepsTheVocabularyIndex) {
  CLLM_SHARED_PATH(path, kQwen3);
  auto model = engine::Model::Open(path).value();
  ChatOutputPlanner planner(model->file().GetString("tokenizer.chat_template").value(), model->tokenizer());
  CompletionRequest req;
  req.tools = kTools;
  req.tool_choice = "required";
  ASSERT_TRUE(planner.ToolChoiceConstraint(req, model->tokenizer()).ok());  // its constraint dropped at once
  std::weak_ptr<const engine::grammar::VocabIndex> index = engine::grammar::VocabIndex::For(model->tokenizer());
  EXPECT_FALSE(index.expired()) << "nothing kept the index: the next forced call builds it again";
}

}  // namespace
}  // namespace cllm::server
