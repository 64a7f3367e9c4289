// The chat output parser: each family's tool calls and <think> reasoning,
// whole and split at every byte (the streamed result must equal the whole
// one), malformed calls given back as content, held partial markers.
#include "server/chat_output.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;

OutputParserOptions Options(ToolCallFormat tools, bool think = false, bool parse_tools = true) {
  OutputParserOptions o;
  o.format.tools = tools;
  o.format.think_tags = think;
  o.parse_tools = parse_tools;
  // Deterministic ids, so split and whole parses compare equal.
  o.make_id = [n = std::make_shared<int>(0)] { return "call_" + std::to_string((*n)++); };
  return o;
}

ParsedOutput Collect(OutputParserOptions o, const std::vector<std::string_view>& pieces) {
  if (o.make_id) o.make_id = [n = std::make_shared<int>(0)] { return "call_" + std::to_string((*n)++); };
  ChatOutputParser p(o);
  ParsedOutput out;
  for (auto piece : pieces) out.Add(p.Feed(piece));
  out.Add(p.Finish());
  return out;
}

void ExpectSame(const ParsedOutput& a, const ParsedOutput& b, const std::string& where) {
  EXPECT_EQ(a.content, b.content) << where;
  EXPECT_EQ(a.reasoning, b.reasoning) << where;
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size()) << where;
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].id, b.tool_calls[i].id) << where;
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name) << where;
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments) << where;
  }
}

// Parse parses `text` whole, and checks that every split into two pieces,
// and byte-by-byte feeding, gives the same result.
ParsedOutput Parse(const OutputParserOptions& o, std::string_view text) {
  ParsedOutput whole = Collect(o, {text});
  for (size_t i = 0; i <= text.size(); ++i) {
    ExpectSame(Collect(o, {text.substr(0, i), text.substr(i)}), whole, "split at " + std::to_string(i));
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  ExpectSame(Collect(o, bytes), whole, "byte by byte");
  return whole;
}

json Args(const ToolCall& c) { return json::parse(c.arguments); }

TEST(ChatOutputTest, DetectsTheFamilyOfEachSharedTemplate) {
  struct Case {
    const char* file;
    ToolCallFormat tools;
    bool think;
  };
  const Case cases[] = {
      {"Qwen-Qwen3-0.6B.jinja", ToolCallFormat::kHermes, true},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", ToolCallFormat::kHermes, false},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", ToolCallFormat::kHermes, false},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", ToolCallFormat::kNone, true},
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", ToolCallFormat::kLlama3, false},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", ToolCallFormat::kMistral, false},
      {"ibm-granite-granite-3.3-2B-Instruct.jinja", ToolCallFormat::kGranite, true},
      {"GLM-4.6.jinja", ToolCallFormat::kGlm, true},
      {"HuggingFaceTB-SmolLM3-3B.jinja", ToolCallFormat::kNone, true},
      {"openai-gpt-oss-120b.jinja", ToolCallFormat::kUnsupported, false},
      {"google-gemma-2-2b-it.jinja", ToolCallFormat::kNone, false},
      {"microsoft-Phi-3.5-mini-instruct.jinja", ToolCallFormat::kNone, false},
  };
  for (const auto& c : cases) {
    CLLM_SHARED_PATH(path, std::string("templates/") + c.file);
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    OutputFormat f = DetectOutputFormat(ss.str());
    EXPECT_EQ(f.tools, c.tools) << c.file << ": " << ToolCallFormatName(f.tools);
    EXPECT_EQ(f.think_tags, c.think) << c.file;
  }
  OutputFormat plain = DetectOutputFormat("");
  EXPECT_EQ(plain.tools, ToolCallFormat::kNone);
  EXPECT_FALSE(plain.think_tags);
}

TEST(ChatOutputTest, HermesCallsInARow) {
  const std::string text =
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\", \"n\": [1, {\"x\": \"}\"}]}}\n"
      "</tool_call>";
  ParsedOutput out = Parse(Options(ToolCallFormat::kHermes), text);
  EXPECT_EQ(out.content, "");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].id, "call_0");
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(Args(out.tool_calls[0]), json({{"city", "Paris"}}));
  EXPECT_EQ(out.tool_calls[1].name, "get_time");
  EXPECT_EQ(Args(out.tool_calls[1])["n"][1]["x"], "}");
}

TEST(ChatOutputTest, Qwen3ThinkingThenTextThenACall) {
  const std::string text =
      "<think>\nThe user wants weather.\n</think>\n\nLet me check.\n<tool_call>\n"
      "{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Oslo\\\"}\"}\n</tool_call>";
  ParsedOutput out = Parse(Options(ToolCallFormat::kHermes, true), text);
  EXPECT_EQ(out.reasoning, "The user wants weather.");
  EXPECT_EQ(out.content, "Let me check.\n");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(Args(out.tool_calls[0]), json({{"city", "Oslo"}}));  // arguments given as a string
}

TEST(ChatOutputTest, ReasoningWithoutTools) {
  auto o = Options(ToolCallFormat::kNone, true, false);
  ParsedOutput out = Parse(o, "<think>\n2+2 is 4.\n\n</think>\n\nThe answer is 4.");
  EXPECT_EQ(out.reasoning, "2+2 is 4.");
  EXPECT_EQ(out.content, "The answer is 4.");
  // Thinking disabled by the template (empty block) gives no reasoning.
  out = Parse(o, "<think>\n\n</think>\n\nHi.");
  EXPECT_EQ(out.reasoning, "");
  EXPECT_EQ(out.content, "Hi.");
  // A <think> later than the start is text.
  out = Parse(o, "I said <think> once.");
  EXPECT_EQ(out.content, "I said <think> once.");
  EXPECT_EQ(out.reasoning, "");
  // A reply cut inside its thinking: all of it is reasoning.
  out = Parse(o, "<think>still going");
  EXPECT_EQ(out.reasoning, "still going");
  EXPECT_EQ(out.content, "");
  // Reasoning off: the tags stay in the content.
  o.parse_reasoning = false;
  out = Parse(o, "<think>x</think>y");
  EXPECT_EQ(out.content, "<think>x</think>y");
}

TEST(ChatOutputTest, DeepSeekReplyStartsInsideTheThinkBlock) {
  EXPECT_TRUE(PromptOpensReasoning("<｜User｜>hi<｜Assistant｜><think>\n"));
  EXPECT_FALSE(PromptOpensReasoning("<｜User｜>hi<｜Assistant｜><think>\n</think>"));
  EXPECT_FALSE(PromptOpensReasoning("<|im_start|>user\n<think><|im_end|>\n<|im_start|>assistant\n"));
  auto o = Options(ToolCallFormat::kNone, true, false);
  o.starts_in_reasoning = true;
  ParsedOutput out = Parse(o, "Hmm, a greeting.\n</think>\n\nHello!");
  EXPECT_EQ(out.reasoning, "Hmm, a greeting.");
  EXPECT_EQ(out.content, "Hello!");
}

TEST(ChatOutputTest, PartialMarkersAreHeldAndFlushedAtTheEnd) {
  auto o = Options(ToolCallFormat::kHermes, true);
  ChatOutputParser p(o);
  OutputDelta d = p.Feed("Sure <tool_");
  EXPECT_EQ(d.content, "Sure ");  // never half a marker
  d = p.Feed("cal");
  EXPECT_TRUE(d.empty());
  d = p.Finish();
  EXPECT_EQ(d.content, "<tool_cal");
  EXPECT_EQ(Parse(o, "<thi").content, "<thi");
  EXPECT_EQ(Parse(o, "  \n").content, "  \n");  // whitespace-only reply kept
  EXPECT_EQ(Parse(o, "a </tool_call> b").content, "a </tool_call> b");
}

TEST(ChatOutputTest, MalformedCallsBecomeContent) {
  auto o = Options(ToolCallFormat::kHermes);
  const std::string bad_json = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>";
  ParsedOutput out = Parse(o, bad_json);
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(out.content, bad_json);
  const std::string no_name = "<tool_call>{\"arguments\": {}}</tool_call> then";
  out = Parse(o, no_name);
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(out.content, no_name);
  // A good call after a bad one is still a call.
  out = Parse(o, "<tool_call>[1]</tool_call><tool_call>{\"name\":\"g\"}</tool_call>");
  EXPECT_EQ(out.content, "<tool_call>[1]</tool_call>");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, "{}");
  // Unclosed at the end: a call if its JSON is whole, else text.
  out = Parse(o, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  out = Parse(o, "<tool_call>\n{\"name\": \"f\", \"argu");
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(out.content, "<tool_call>\n{\"name\": \"f\", \"argu");
  // Deeply nested JSON is refused before nlohmann recurses.
  std::string deep = "<tool_call>{\"name\":\"f\",\"arguments\":" + std::string(200, '[') + std::string(200, ']') +
                     "}</tool_call>";
  out = Collect(o, {deep});
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(out.content, deep);
}

TEST(ChatOutputTest, OversizedCallsAndTooManyCallsBecomeContent) {
  auto o = Options(ToolCallFormat::kHermes);
  o.max_call_bytes = 40;
  const std::string big = "<tool_call>{\"name\":\"f\",\"arguments\":{\"s\":\"" + std::string(64, 'x') +
                          "\"}}</tool_call> <tool_call>{\"name\":\"g\"}</tool_call>";
  ParsedOutput out = Parse(o, big);
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(out.content, big);  // the rest of the reply is text
  o = Options(ToolCallFormat::kMistral);
  o.max_tool_calls = 1;
  out = Parse(o, "[TOOL_CALLS][{\"name\":\"a\",\"arguments\":{}},{\"name\":\"b\",\"arguments\":{}}]");
  EXPECT_TRUE(out.tool_calls.empty());
}

TEST(ChatOutputTest, Llama3JsonReplyAndPythonTag) {
  auto o = Options(ToolCallFormat::kLlama3);
  ParsedOutput out =
      Parse(o, "  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\", \"days\": 3}}");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(Args(out.tool_calls[0]), json({{"city", "Rome"}, {"days", 3}}));
  EXPECT_EQ(out.content, "");
  out = Parse(o, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  // JSON that is not a call, and JSON later in the text, are content.
  out = Parse(o, "{\"answer\": 42} is the JSON.");
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(out.content, "{\"answer\": 42} is the JSON.");
  out = Parse(o, "Call {\"name\": \"f\", \"parameters\": {}}");
  EXPECT_TRUE(out.tool_calls.empty());
  // The built-in tools' .call() syntax is not parsed.
  out = Parse(o, "<|python_tag|>brave_search.call(query=\"x\")");
  EXPECT_EQ(out.content, "<|python_tag|>brave_search.call(query=\"x\")");
}

TEST(ChatOutputTest, MistralCallsIgnoreTheModelsIds) {
  auto o = Options(ToolCallFormat::kMistral);
  ParsedOutput out = Parse(o,
                           "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"q\": \"]\"}, \"id\": \"abcdefghi\"}, "
                           "{\"name\": \"b\", \"arguments\": {}}]");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].id, "call_0");
  EXPECT_EQ(Args(out.tool_calls[0]), json({{"q", "]"}}));
  EXPECT_EQ(out.tool_calls[1].name, "b");
  // Default ids: 9 alphanumerics, as Mistral's template requires.
  o.make_id = nullptr;
  ChatOutputParser p(o);
  ParsedOutput real;
  real.Add(p.Feed("[TOOL_CALLS][{\"name\":\"a\",\"arguments\":{}}]"));
  real.Add(p.Finish());
  ASSERT_EQ(real.tool_calls.size(), 1u);
  EXPECT_EQ(real.tool_calls[0].id.size(), 9u);
  EXPECT_EQ(Parse(o, "[TOOL_CALLS] no json").content, "[TOOL_CALLS] no json");
}

TEST(ChatOutputTest, GraniteAndGlm) {
  ParsedOutput out = Parse(Options(ToolCallFormat::kGranite, true),
                           "<|tool_call|>[{\"name\": \"f\", \"arguments\": {\"x\": 1}}]");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(Args(out.tool_calls[0]), json({{"x", 1}}));
  out = Parse(Options(ToolCallFormat::kGlm, true),
              "<think>plan</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
              "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>");
  EXPECT_EQ(out.reasoning, "plan");
  EXPECT_EQ(out.content, "");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(Args(out.tool_calls[0]), json({{"city", "Paris"}, {"days", 2}}));
  out = Parse(Options(ToolCallFormat::kGlm), "<tool_call>f\n<arg_key>a</arg_key></tool_call>");
  EXPECT_TRUE(out.tool_calls.empty());
}

TEST(ChatOutputTest, ToolsNotParsedStayText) {
  const std::string text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
  EXPECT_EQ(Parse(Options(ToolCallFormat::kHermes, false, false), text).content, text);
  // Nothing to look for: text passes through byte for byte, whitespace included.
  EXPECT_EQ(Parse(Options(ToolCallFormat::kNone), "  \nhi <think>").content, "  \nhi <think>");
}

TEST(ChatOutputTest, CallsStreamAsIdAndNameThenArguments) {
  auto o = Options(ToolCallFormat::kHermes);
  o.make_id = nullptr;
  ChatOutputParser p(o);
  OutputDelta d = p.Feed("<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":1}}</tool_call>");
  ASSERT_EQ(d.tool_calls.size(), 2u);
  EXPECT_EQ(d.tool_calls[0].index, 0u);
  EXPECT_EQ(d.tool_calls[0].name, "f");
  EXPECT_EQ(d.tool_calls[0].arguments, "");
  EXPECT_EQ(d.tool_calls[0].id.rfind("call_", 0), 0u);
  EXPECT_EQ(d.tool_calls[0].id.size(), 29u);
  EXPECT_TRUE(d.tool_calls[1].id.empty());
  EXPECT_EQ(d.tool_calls[1].arguments, "{\"a\":1}");
  d = p.Feed("<tool_call>{\"name\":\"g\"}</tool_call>");
  ASSERT_EQ(d.tool_calls.size(), 2u);
  EXPECT_EQ(d.tool_calls[0].index, 1u);
  // Random ids do not repeat.
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    ChatOutputParser q(o);
    ids.insert(q.Feed("<tool_call>{\"name\":\"f\"}</tool_call>").tool_calls.at(0).id);
  }
  EXPECT_EQ(ids.size(), 100u);
}

}  // namespace
}  // namespace cllm::server
