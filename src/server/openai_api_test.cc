#include "server/openai_api.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cllm::server {
namespace {

using nlohmann::json;

ApiResult<CompletionRequest> Chat(const std::string& body) {
  return ParseCompletionRequest(body, true, ApiLimits{});
}

TEST(OpenAiApiTest, ParsesTypicalSdkChatRequest) {
  auto r = Chat(R"({"model":"qwen3","messages":[{"role":"system","content":"be brief"},
    {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
    "max_tokens":64,"temperature":0.2,"top_p":0.9,"seed":7,"stop":["\n\n"],"stream":true,
    "stream_options":{"include_usage":true},"n":1,"presence_penalty":0,"user":"abc"})");
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->model, "qwen3");
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[1].content, "hi there");
  EXPECT_EQ(r->sampling.max_tokens, 64);
  EXPECT_FLOAT_EQ(r->sampling.temperature, 0.2f);
  EXPECT_EQ(r->sampling.seed, 7u);
  EXPECT_EQ(r->sampling.stop, std::vector<std::string>{"\n\n"});
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST(OpenAiApiTest, ParsesLegacyCompletion) {
  auto r = ParseCompletionRequest(R"({"model":"m","prompt":"Once upon","max_tokens":5,"stop":"."})", false,
                                  ApiLimits{});
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_FALSE(r->chat);
  EXPECT_EQ(r->prompt, "Once upon");
  EXPECT_EQ(r->sampling.stop, std::vector<std::string>{"."});
  EXPECT_EQ(r->sampling.max_tokens, 5);
}

TEST(OpenAiApiTest, MaxTokensAbsentMeansTheRestOfTheContext) {
  // The service fills in context - prompt tokens; the parser only says "not given".
  auto r = Chat(R"({"messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_FALSE(r->sampling.max_tokens.has_value());
  auto c = Chat(R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":9})");
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_EQ(c->sampling.max_tokens, 9);
}

TEST(OpenAiApiTest, RejectsBadRequestsWithSpecificMessages) {
  struct Case {
    const char* body;
    const char* needle;
  } cases[] = {
      {"{not json", "not valid JSON"},
      {"[1,2]", "JSON object"},
      {R"({"messages":[]})", "non-empty array"},
      {R"({"model":"m"})", "'messages' is required"},
      {R"({"messages":[{"role":"robot","content":"x"}]})", "role"},
      {R"({"messages":[{"role":"user"}]})", "content' is required"},
      {R"({"messages":[{"role":"user","content":"x","extra":1}]})", "unknown field"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"5"})", "integer"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":-0.1})", "top_p"},
      {R"({"messages":[{"role":"user","content":"x"}],"frobnicate":true})", "unknown or unsupported field 'frobnicate'"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":9})", "'n'"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":[""]})", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}})", "stream"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})", "text parts"},
  };
  for (const auto& c : cases) {
    auto r = Chat(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.code(), ApiErrc::kBadRequest) << c.body;
    EXPECT_NE(r.detail().find(c.needle), std::string::npos) << c.body << " → " << r.detail();
  }
}

TEST(OpenAiApiTest, DeepNestingIsRejectedNotACrash) {
  std::string body = R"({"messages":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto r = Chat(body);
  EXPECT_EQ(r.code(), ApiErrc::kBadRequest);
  EXPECT_NE(r.detail().find("nests deeper"), std::string::npos);
  // JSON inside a string escapes the body's guard: a tool call's
  // "arguments" string nested 100000 deep overflowed the stack when the
  // parsed value was copied (found by review). It is checked on its own.
  const std::string args = std::string(100000, '[') + std::string(100000, ']');
  std::string deep = R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"type":"function",)"
                     R"("function":{"name":"f","arguments":"{\"a\":)" + args + R"(}"}}]},)"
                     R"({"role":"user","content":"hi"}]})";
  auto nested = Chat(deep);
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.code(), ApiErrc::kBadRequest);
  EXPECT_NE(nested.detail().find("arguments' nests deeper"), std::string::npos) << nested.detail().substr(0, 200);
}

TEST(OpenAiApiTest, OversizedBodyIsTooLarge) {
  ApiLimits limits;
  limits.max_body_bytes = 100;
  std::string body = R"({"messages":[{"role":"user","content":")" + std::string(200, 'x') + "\"}]}";
  EXPECT_EQ(ParseCompletionRequest(body, true, limits).code(), ApiErrc::kTooLarge);
  limits = ApiLimits{};
  limits.max_messages = 1;
  EXPECT_EQ(ParseCompletionRequest(R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]})",
                                   true, limits).code(),
            ApiErrc::kTooLarge);
}

TEST(OpenAiApiTest, ErrorBodyHasOpenAiShape) {
  auto body = json::parse(ErrorBody(MakeError(ApiErrc::kQueueFull, "queue full")));
  EXPECT_EQ(body["error"]["message"], "queue full");
  EXPECT_EQ(body["error"]["type"], "rate_limit_error");
  EXPECT_EQ(HttpStatus(ApiErrc::kQueueFull), 429);
  EXPECT_EQ(HttpStatus(ApiErrc::kTooLarge), 413);
  EXPECT_EQ(HttpStatus(ApiErrc::kUnauthorized), 401);
  EXPECT_EQ(HttpStatus(ApiErrc::kNotReady), 503);
}

// A 404 quoting a client's path that is not UTF-8 ("GET /\xff") threw in
// json::dump and became a 500 with an error log line per request.
TEST(OpenAiApiTest, ErrorBodyQuotingInvalidUtf8IsStillJson) {
  const std::string detail = std::string("no route GET /") + static_cast<char>(0xff) + "x";
  std::string text;
  ASSERT_NO_THROW(text = ErrorBody(MakeError(ApiErrc::kNotFound, detail)));
  auto body = json::parse(text, nullptr, false);
  ASSERT_FALSE(body.is_discarded());
  EXPECT_EQ(body["error"]["message"], "no route GET /\xEF\xBF\xBDx");
}

TEST(OpenAiApiTest, ResponsesAndStreamEvents) {
  ResponseMeta meta{"chatcmpl-1", "qwen3", 1700000000, true};
  auto body = json::parse(CompletionBody(meta, "Hello", FinishReason::kStop, Usage{3, 1, 2}));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["total_tokens"], 4);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 2);  // from the user's prompt cache

  std::string ev = StreamTextEvent(meta, "Hel");
  ASSERT_EQ(ev.rfind("data: ", 0), 0u);
  ASSERT_EQ(ev.substr(ev.size() - 2), "\n\n");
  auto chunk = json::parse(ev.substr(6));
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "Hel");
  auto fin = json::parse(StreamFinishEvent(meta, FinishReason::kLength).substr(6));
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
  auto usage = json::parse(StreamUsageEvent(meta, Usage{2, 5}).substr(6));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 5);
  EXPECT_EQ(kStreamDone, "data: [DONE]\n\n");

  // Invalid UTF-8 from a half-emitted character never breaks the JSON.
  auto broken = json::parse(StreamTextEvent(meta, "\xe4\xbd").substr(6));
  EXPECT_TRUE(broken["choices"][0]["delta"]["content"].is_string());

  ResponseMeta legacy{"cmpl-1", "m", 1, false};
  auto text = json::parse(CompletionBody(legacy, "abc", FinishReason::kStop, Usage{}));
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "abc");
  auto models = json::parse(ModelsBody("qwen3", 5));
  EXPECT_EQ(models["data"][0]["id"], "qwen3");
}

TEST(OpenAiApiTest, ChatMessagesAsOpenAiSendsThem) {
  auto r = ParseCompletionRequest(R"({"messages":[
      {"role":"developer","content":[{"type":"text","text":"be "},{"type":"text","text":"brief"}]},
      {"role":"user","content":"weather?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"c1","name":"get_weather","content":"21 C"},
      {"role":"assistant","content":"Sunny.","reasoning_content":"It said 21."}],
    "chat_template_kwargs":{"enable_thinking":false}})", true, ApiLimits{});
  ASSERT_TRUE(r.ok()) << r.detail();
  const nlohmann::json& m = r->messages_json;
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0]["role"], "system");          // developer: the role templates know
  EXPECT_EQ(m[0]["content"], "be brief");     // text parts joined
  EXPECT_TRUE(m[2]["content"].is_null());
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["arguments"]["city"], "Paris");  // string → object
  EXPECT_EQ(m[3]["tool_call_id"], "c1");
  EXPECT_EQ(m[4]["reasoning_content"], "It said 21.");
  EXPECT_EQ(r->chat_template_kwargs["enable_thinking"], false);
  EXPECT_EQ(r->messages[1].content, "weather?");
}

TEST(OpenAiApiTest, BadChatMessagesAreRefusedNamingTheField) {
  struct Case {
    const char* body;
    const char* needle;
  };
  const Case cases[] = {
      {R"({"messages":[{"role":"user","content":null}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":"x","tool_calls":[]}]})", "only for assistant"},
      {R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"not json"}}]}]})",
       "messages[0].tool_calls[0].function.arguments"},
      {R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"[1]"}}]}]})",
       "JSON object"},
      {R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"{}"}}]}]})", "function.name"},
      {R"({"messages":[{"role":"user","content":"x","tool_call_id":"c"}]})", "only for tool"},
      {R"({"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":[]})", "must be an object"},
      {R"({"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":{"bos_token":"x"}})", "set by the server"},
  };
  for (const Case& c : cases) {
    auto r = ParseCompletionRequest(c.body, true, ApiLimits{});
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.code(), ApiErrc::kBadRequest);
    EXPECT_NE(r.detail().find(c.needle), std::string::npos) << c.body << " → " << r.detail();
  }
}

}  // namespace
}  // namespace cllm::server
