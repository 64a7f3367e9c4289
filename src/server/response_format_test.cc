// response_format: parsing (the three types, errors naming the field and the
// schema keyword, the schema kept in the request's key order) and, through
// the service, output that a small story model would never write unless the
// constraint reached its sampler.
#include "server/response_format.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/service.h"
#include "support/fake_writer.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;

ApiResult<CompletionRequest> Parse(const std::string& response_format) {
  std::string body = R"({"prompt":"Hi","response_format":)" + response_format + "}";
  return ParseCompletionRequest(body, /*chat=*/false, ApiLimits{});
}

TEST(ResponseFormatTest, ParsesTheThreeTypes) {
  auto text = Parse(R"({"type":"text"})");
  ASSERT_TRUE(text.ok()) << text.detail();
  EXPECT_TRUE(text->response_schema.is_null());
  auto obj = Parse(R"({"type":"json_object"})");
  ASSERT_TRUE(obj.ok()) << obj.detail();
  EXPECT_EQ(obj->response_schema, nlohmann::ordered_json({{"type", "object"}}));
  auto sch = Parse(R"({"type":"json_schema","json_schema":{"name":"p","strict":true,
      "schema":{"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"string"}},"required":["z","a"]}}})");
  ASSERT_TRUE(sch.ok()) << sch.detail();
  // The request's order, not the names' order: "z" before "a".
  EXPECT_EQ(sch->response_schema["properties"].begin().key(), "z");
  EXPECT_EQ(sch->response_format["type"], "json_schema");
}

TEST(ResponseFormatTest, RejectsWithTheFieldAndKeywordNamed) {
  struct Case { const char* rf; const char* names; };
  const Case cases[] = {
      {R"("json")", "'response_format' must be an object"},
      {R"({"type":"yaml"})", "response_format.type"},
      {R"({"type":"json_schema"})", "response_format.json_schema"},
      {R"({"type":"json_schema","json_schema":{"schema":{}}})", "json_schema.name"},
      {R"j({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"(?!a)"}}})j", "pattern: lookahead"},
      {R"({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","format":"uri"}}})", "format 'uri'"},
      {R"({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"integer","minimum":3,"maximum":2}}})", "no integer"},
      {R"({"type":"json_schema","json_schema":{"name":"x","schema":{"$ref":"#/$defs/none"}}})", "$ref"},
      {R"({"type":"json_schema","json_schema":{"name":"x","schema":{}, "extra":1}})", "json_schema.extra"},
      {R"({"type":"json_object","schema":{}})", "response_format.schema"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.rf);
    ASSERT_FALSE(r.ok()) << c.rf;
    EXPECT_EQ(r.error().code, ApiErrc::kBadRequest) << c.rf;
    EXPECT_NE(r.detail().find(c.names), std::string::npos) << r.detail();
    EXPECT_NE(r.detail().find("response_format"), std::string::npos) << r.detail();
  }
  // Over the size limit.
  std::string big = R"({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","description":")" +
                    std::string(kMaxResponseSchemaBytes, 'd') + R"("}}})";
  auto r = Parse(big);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.detail().find("bytes"), std::string::npos);
}

constexpr char kModel[] = "models/stories260K-f16.gguf";

TEST(ResponseFormatServiceTest, ConstraintReachesTheSampler) {
  CLLM_SHARED_PATH(path, kModel);
  auto m = engine::Model::Open(path);
  ASSERT_TRUE(m.ok());
  ServiceOptions so;
  so.model_name = "stories";
  Service service(**m, so);
  const json rf = {{"type", "json_schema"},
                   {"json_schema",
                    {{"name", "answer"},
                     {"schema",
                      {{"type", "object"},
                       {"properties", {{"ok", {{"type", "boolean"}}}, {"n", {{"type", "integer"}, {"minimum", 1}, {"maximum", 9}}}}},
                       {"required", {"n", "ok"}},
                       {"additionalProperties", false}}}}}};
  for (uint64_t seed : {1, 2, 3}) {
    net::Request r;
    r.method = "POST";
    r.target = "/v1/chat/completions";
    r.body = json{{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                  {"max_tokens", 48}, {"temperature", 1.0}, {"seed", seed}, {"response_format", rf}}
                 .dump();
    auto w = std::make_shared<testing::FakeWriter>();
    service.Handle(r, w);
    ASSERT_TRUE(w->WaitComplete());
    ASSERT_EQ(w->status(), 200) << w->body();
    json body = json::parse(w->body());
    EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
    std::string content = body["choices"][0]["message"]["content"];
    json out = json::parse(content, nullptr, false);
    ASSERT_FALSE(out.is_discarded()) << content;
    ASSERT_TRUE(out.is_object()) << content;
    EXPECT_TRUE(out["ok"].is_boolean()) << content;
    ASSERT_TRUE(out["n"].is_number_integer()) << content;
    EXPECT_GE(out["n"].get<int>(), 1);
    EXPECT_LE(out["n"].get<int>(), 9);
    EXPECT_EQ(out.size(), 2u) << content;
  }
  // A schema the grammar refuses is a 400 before anything is queued.
  net::Request bad;
  bad.method = "POST";
  bad.target = "/v1/completions";
  bad.body = R"({"prompt":"Hi","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","minProperties":2}}}})";
  auto w = std::make_shared<testing::FakeWriter>();
  service.Handle(bad, w);
  EXPECT_EQ(w->status(), 400);
  EXPECT_NE(w->body().find("minProperties"), std::string::npos) << w->body();
  service.Shutdown();
}

}  // namespace
}  // namespace cllm::server
