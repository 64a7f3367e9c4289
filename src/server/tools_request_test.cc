// The tool-calling request fields: tools validated (shape, names, count,
// size), tool_choice forms, parallel_tool_calls; each failure a 400 naming
// the field.
#include "server/tools_request.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/chat_output_plan.h"

namespace cllm::server {
namespace {

using nlohmann::json;

constexpr char kWeather[] =
    R"({"type":"function","function":{"name":"get_weather","description":"Weather of a city",
       "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}})";

ApiResult<CompletionRequest> Chat(const std::string& extra, bool chat = true) {
  std::string input = chat ? R"("messages":[{"role":"user","content":"hi"}])" : R"("prompt":"hi")";
  return ParseCompletionRequest("{" + input + "," + extra + "}", chat, ApiLimits{});
}

void ExpectBad(const std::string& extra, const std::string& detail_part) {
  auto r = Chat(extra);
  ASSERT_FALSE(r.ok()) << extra;
  EXPECT_EQ(r.code(), ApiErrc::kBadRequest) << extra;
  EXPECT_NE(r.detail().find(detail_part), std::string::npos) << r.detail();
}

TEST(ToolsRequestTest, AcceptsOpenAiSdkTools) {
  auto r = Chat(std::string(R"("tools":[)") + kWeather +
                R"(],"tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false)");
  ASSERT_TRUE(r.ok()) << r.detail();
  ASSERT_TRUE(r->tools.is_array());
  EXPECT_EQ(r->tools[0]["function"]["name"], "get_weather");
  std::string name;
  EXPECT_EQ(ToolChoiceMode(r->tool_choice, &name), "function");
  EXPECT_EQ(name, "get_weather");
  EXPECT_FALSE(r->parallel_tool_calls);
  for (const char* choice : {"none", "auto", "required"}) {
    auto c = Chat(std::string(R"("tools":[)") + kWeather + R"(],"tool_choice":")" + choice + "\"");
    ASSERT_TRUE(c.ok()) << c.detail();
    EXPECT_EQ(ToolChoiceMode(c->tool_choice), choice);
  }
  // Absent, null and empty are no tools; absent tool_choice is auto.
  auto none = Chat(R"("tools":[],"tool_choice":"auto")");
  ASSERT_TRUE(none.ok()) << none.detail();
  EXPECT_TRUE(none->tools.is_null());
  EXPECT_EQ(ToolChoiceMode(none->tool_choice), "auto");
  EXPECT_TRUE(Chat(R"("tools":null,"tool_choice":null)").ok());
}

TEST(ToolsRequestTest, RefusesMalformedTools) {
  ExpectBad(R"("tools":{})", "'tools' must be an array");
  ExpectBad(R"("tools":[1])", "'tools[0]' must be an object");
  ExpectBad(R"("tools":[{"type":"code","function":{"name":"f"}}])", "'tools[0].type'");
  ExpectBad(R"("tools":[{"type":"function"}])", "'tools[0].function'");
  ExpectBad(R"("tools":[{"type":"function","function":{}}])", "'tools[0].function.name' is required");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":"a b"}}])", "'tools[0].function.name'");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":")" + std::string(65, 'a') + "\"}}]",
            "'tools[0].function.name'");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":"f","parameters":[]}}])", "parameters");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":"f","description":3}}])", "description");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":"f","x":1}}])", "unknown field 'tools[0].function.x'");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":"f"},"y":1}])", "unknown field 'tools[0].y'");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}])",
            "repeats");
  std::string many = R"("tools":[)";
  for (size_t i = 0; i <= kMaxTools; ++i) {
    many += (i ? "," : "") + std::string(R"({"type":"function","function":{"name":"f)") + std::to_string(i) + "\"}}";
  }
  ExpectBad(many + "]", "at most");
  ExpectBad(R"("tools":[{"type":"function","function":{"name":"f","description":")" + std::string(kMaxToolBytes, 'd') +
                "\"}}]",
            "bytes");
}

TEST(ToolsRequestTest, RefusesBadToolChoice) {
  ExpectBad(R"("tool_choice":"always")", "'tool_choice' must be");
  ExpectBad(R"("tool_choice":{"type":"function"})", "'tool_choice' must be");
  ExpectBad(R"("tool_choice":"required")", "needs 'tools'");
  ExpectBad(std::string(R"("tools":[)") + kWeather + R"(],"tool_choice":{"type":"function","function":{"name":"g"}})",
            "not in 'tools'");
  ExpectBad(R"("parallel_tool_calls":"yes")", "'parallel_tool_calls'");
  ExpectBad(R"("functions":[{"name":"f"}])", "'functions'");  // the deprecated form stays refused
  auto legacy = Chat(std::string(R"("tools":[)") + kWeather + "]", /*chat=*/false);
  ASSERT_FALSE(legacy.ok());
  EXPECT_NE(legacy.detail().find("/v1/chat/completions"), std::string::npos);
}

TEST(ToolsRequestTest, PlannerRefusesWhatItCannotParseOrEnforce) {
  auto with_tools = [](const std::string& choice) {
    return Chat(std::string(R"("tools":[)") + kWeather + R"(],"tool_choice":)" + choice).value();
  };
  // A template without tools (plain), and one in an unsupported syntax.
  ChatOutputPlanner plain;
  EXPECT_EQ(plain.Plan(with_tools("\"auto\""), "").code(), ApiErrc::kBadRequest);
  EXPECT_TRUE(plain.Plan(with_tools("\"none\""), "").ok());  // tools not used: fine anywhere
  EXPECT_FALSE(ChatOutputPlanner::RendersTools(with_tools("\"none\"")));
  EXPECT_TRUE(ChatOutputPlanner::RendersTools(with_tools("\"auto\"")));
}

}  // namespace
}  // namespace cllm::server
