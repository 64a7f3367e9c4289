// Parsing of n, penalties, logit_bias and logprobs (ranges, chat vs
// completions semantics, "param" naming the field), and the logprobs shapes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/openai_api.h"

namespace cllm::server {
namespace {

using nlohmann::json;

ApiResult<CompletionRequest> Parse(json extra, bool chat) {
  json body = chat ? json{{"messages", {{{"role", "user"}, {"content", "x"}}}}} : json{{"prompt", "x"}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return ParseCompletionRequest(body.dump(), chat, ApiLimits{});
}

TEST(SamplingRequestTest, ReadsTheFieldsInRange) {
  auto r = Parse({{"n", 3},
                  {"presence_penalty", -2},
                  {"frequency_penalty", 1.5},
                  {"logit_bias", {{"7", -100}, {"12", 2.5}}},
                  {"logprobs", true},
                  {"top_logprobs", 20}},
                 true);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->sampling.n, 3);
  EXPECT_FLOAT_EQ(r->sampling.presence_penalty, -2.0f);
  EXPECT_FLOAT_EQ(r->sampling.frequency_penalty, 1.5f);
  ASSERT_EQ(r->sampling.logit_bias.size(), 2u);
  EXPECT_EQ(r->sampling.logprobs, 20);
  auto off = Parse({{"logprobs", false}}, true);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->sampling.logprobs, -1);
  auto on = Parse({{"logprobs", true}}, true);
  EXPECT_EQ(on->sampling.logprobs, 0);  // the chosen token only
  auto completions = Parse({{"logprobs", 5}}, false);
  ASSERT_TRUE(completions.ok());
  EXPECT_EQ(completions->sampling.logprobs, 5);
  EXPECT_EQ(Parse({{"logprobs", nullptr}, {"n", nullptr}}, false)->sampling.logprobs, -1);
}

TEST(SamplingRequestTest, RefusesOutOfRangeAndNamesTheField) {
  struct Case {
    json extra;
    bool chat;
    const char* param;
  };
  const Case cases[] = {
      {{{"n", 0}}, true, "n"},
      {{{"n", 9}}, true, "n"},
      {{{"n", 1.5}}, true, "n"},
      {{{"presence_penalty", 2.5}}, true, "presence_penalty"},
      {{{"frequency_penalty", "1"}}, false, "frequency_penalty"},
      {{{"logit_bias", {{"abc", 1}}}}, true, "logit_bias"},
      {{{"logit_bias", {{"-1", 1}}}}, true, "logit_bias"},
      {{{"logit_bias", {{"5", 101}}}}, true, "logit_bias"},
      {{{"logit_bias", json::array()}}, true, "logit_bias"},
      // The same id twice ("7" and "07") would add biases past ±100 (found by review).
      {{{"logit_bias", {{"7", 100}, {"07", 100}}}}, true, "logit_bias"},
      {{{"logit_bias", {{"00", 1}}}}, false, "logit_bias"},
      // Above 1000 the cut sorts most of the vocabulary per token (found by review).
      {{{"top_k", 1001}}, true, "top_k"},
      {{{"logprobs", 2}}, true, "logprobs"},  // chat: a boolean
      {{{"top_logprobs", 3}}, true, "top_logprobs"},  // without logprobs: true
      {{{"logprobs", true}, {"top_logprobs", 21}}, true, "top_logprobs"},
      {{{"logprobs", 6}}, false, "logprobs"},
      {{{"logprobs", true}}, false, "logprobs"},  // completions: an integer
      {{{"top_logprobs", 2}}, false, "top_logprobs"},
      {{{"temperature", 9}}, true, "temperature"},
      {{{"frobnicate", 1}}, true, "frobnicate"},
  };
  for (const Case& c : cases) {
    auto r = Parse(c.extra, c.chat);
    ASSERT_FALSE(r.ok()) << c.extra.dump();
    EXPECT_EQ(r.code(), ApiErrc::kBadRequest) << c.extra.dump();
    EXPECT_EQ(r.error().param, c.param) << c.extra.dump() << " → " << r.detail();
    const json body = json::parse(ErrorBody(r.error()));
    EXPECT_EQ(body["error"]["param"], c.param);
  }
  // A message without a quoted field leaves param null.
  auto bad_json = ParseCompletionRequest("[1]", true, ApiLimits{});
  EXPECT_TRUE(json::parse(ErrorBody(bad_json.error()))["error"]["param"].is_null());
}

TEST(SamplingRequestTest, ContextLengthErrorIs400WithItsCode) {
  ApiError e = MakeError(ApiErrc::kContextLength, "too long");
  e.param = "messages";
  EXPECT_EQ(HttpStatus(e.code), 400);
  const json body = json::parse(ErrorBody(e));
  EXPECT_EQ(body["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "messages");
}

TEST(LogprobRenderTest, ChatAndCompletionShapes) {
  const std::vector<LogprobEntry> entries = {
      {"Hi", -0.5f, {{"Hi", -0.5f}, {"Ho", -1.5f}}, 0},
      {"\xe2\x80", -2.0f, {}, 2},  // half a character
  };
  ResponseMeta meta{"chatcmpl-1", "m", 1, true};
  json chat = json::parse(CompletionBodyWithLogprobs(meta, "Hi", FinishReason::kStop, {3, 2}, entries));
  const json& content = chat["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u);
  EXPECT_EQ(content[0]["token"], "Hi");
  EXPECT_FLOAT_EQ(content[0]["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(content[0]["bytes"], json::array({72, 105}));
  EXPECT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "Ho");
  EXPECT_EQ(content[1]["token"], "bytes:\\xe2\\x80");
  EXPECT_EQ(content[1]["bytes"], json::array({226, 128}));
  meta.chat = false;
  json completion = json::parse(CompletionBodyWithLogprobs(meta, "Hi", FinishReason::kLength, {3, 2}, entries));
  const json& lp = completion["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json::array({"Hi", "bytes:\\xe2\\x80"}));
  EXPECT_EQ(lp["text_offset"], json::array({0, 2}));
  EXPECT_FLOAT_EQ(lp["top_logprobs"][0]["Ho"].get<float>(), -1.5f);
  EXPECT_EQ(lp["token_logprobs"].size(), 2u);
  const std::string event = StreamTextEventWithLogprobs(meta, "Hi", entries);
  ASSERT_EQ(event.rfind("data: ", 0), 0u);
  EXPECT_EQ(json::parse(event.substr(6))["choices"][0]["logprobs"]["tokens"].size(), 2u);
}

}  // namespace
}  // namespace cllm::server
