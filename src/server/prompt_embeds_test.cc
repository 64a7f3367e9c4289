// prompt_embeds on the API (split inference, issue 16 item 3): the rows of a
// text prompt's ids, sent as float32 or float16, give exactly the text
// prompt's answer on /v1/completions (streamed too) and, as a user message's
// content part, on /v1/chat/completions; malformed matrices get a 400 naming
// what is wrong (the byte limit before any decoding). Who may send rows at
// all: prompt_embeds_access_test.cc.
#include "server/prompt_embeds.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/encoding.h"
#include "engine/kernels/kernels.h"
#include "server/service.h"
#include "support/fake_writer.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;
using testing::FakeWriter;

constexpr char kModel[] = "models/stories260K-f16.gguf";

// Base64 of little-endian float32 / float16 values, as a client sends them.
std::string F32Base64(const std::vector<float>& v) {
  Bytes b(v.size() * 4);
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int k = 0; k < 4; ++k) b[4 * i + k] = static_cast<uint8_t>(u >> (8 * k));
  }
  return Base64Encode(b);
}
std::string F16Base64(const std::vector<uint16_t>& h) {
  Bytes b(h.size() * 2);
  for (size_t i = 0; i < h.size(); ++i) {
    b[2 * i] = static_cast<uint8_t>(h[i]);
    b[2 * i + 1] = static_cast<uint8_t>(h[i] >> 8);
  }
  return Base64Encode(b);
}

// --- decoding, without a model -------------------------------------------------

ApiResult<std::vector<float>> Decode(const std::string& b64, EmbedsDtype dtype, int n_embd = 2, int context = 4) {
  std::vector<float> out;
  CLLM_RETURN_IF_ERROR(DecodePromptEmbeds({b64, dtype}, n_embd, context, "prompt_embeds", &out));
  return out;
}

TEST(PromptEmbedsDecodeTest, Float16WidensExactlyIncludingSubnormals) {
  // 1.0, -2.0, the smallest subnormal 2^-24, the largest subnormal, 65504, -0.
  auto out = Decode(F16Base64({0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x8000}), EmbedsDtype::kFloat16);
  ASSERT_TRUE(out.ok()) << out.detail();
  ASSERT_EQ(out->size(), 6u);
  EXPECT_EQ((*out)[0], 1.0f);
  EXPECT_EQ((*out)[1], -2.0f);
  EXPECT_EQ((*out)[2], std::ldexp(1.0f, -24));
  EXPECT_EQ((*out)[3], std::ldexp(1023.0f, -24));
  EXPECT_EQ((*out)[4], 65504.0f);
  EXPECT_TRUE(std::signbit((*out)[5]) && (*out)[5] == 0.0f);
}

TEST(PromptEmbedsDecodeTest, Float32IsLittleEndian) {
  auto out = Decode(F32Base64({1.5f, -0.25f}), EmbedsDtype::kFloat32);
  ASSERT_TRUE(out.ok()) << out.detail();
  EXPECT_EQ(*out, (std::vector<float>{1.5f, -0.25f}));
}

TEST(PromptEmbedsDecodeTest, RefusesMalformedMatrices) {
  auto code = [](const ApiResult<std::vector<float>>& r) { return r.ok() ? ApiErrc{} : r.code(); };
  const ApiErrc invalid = ApiErrc::kPromptEmbedsInvalid;
  EXPECT_EQ(code(Decode("not base64!!", EmbedsDtype::kFloat32)), invalid);
  EXPECT_EQ(code(Decode("AAAAAAAAAAA", EmbedsDtype::kFloat32)), invalid);        // unpadded
  EXPECT_EQ(code(Decode("AAAA AAAAAAA=", EmbedsDtype::kFloat32)), invalid);      // whitespace
  EXPECT_EQ(code(Decode("", EmbedsDtype::kFloat32)), invalid);                   // 0 rows
  EXPECT_EQ(code(Decode(F32Base64({1, 2, 3}), EmbedsDtype::kFloat32)), invalid);  // 1.5 rows
  EXPECT_EQ(code(Decode(F16Base64({0x3c00, 0x3c00}), EmbedsDtype::kFloat32)), invalid);  // one float32
  EXPECT_EQ(code(Decode(F32Base64({1, std::numeric_limits<float>::quiet_NaN()}), EmbedsDtype::kFloat32)), invalid);
  EXPECT_EQ(code(Decode(F32Base64({1, -std::numeric_limits<float>::infinity()}), EmbedsDtype::kFloat32)), invalid);
  EXPECT_EQ(code(Decode(F16Base64({0x3c00, 0x7c00}), EmbedsDtype::kFloat16)), invalid);  // +Inf
  EXPECT_EQ(code(Decode(F16Base64({0x7e00, 0x3c00}), EmbedsDtype::kFloat16)), invalid);  // NaN
  // 4 rows of 2 float32 = 32 bytes = 44 base64 characters at most. Longer
  // text is refused as too long even when it is not base64: unread.
  EXPECT_EQ(MaxEmbedsBase64Chars(4, 2), 44u);
  EXPECT_TRUE(Decode(F32Base64(std::vector<float>(8, 1.0f)), EmbedsDtype::kFloat32).ok());
  EXPECT_EQ(code(Decode(F32Base64(std::vector<float>(10, 1.0f)), EmbedsDtype::kFloat32)),
            ApiErrc::kPromptEmbedsTooLong);
  EXPECT_EQ(code(Decode(std::string(48, '!'), EmbedsDtype::kFloat32)), ApiErrc::kPromptEmbedsTooLong);
  // float16 values are half the bytes: the cap is the same 4 rows, not 8
  // (with the float32 cap, twice the context's rows were decoded, at 4 bytes
  // each, before they were counted).
  EXPECT_EQ(MaxEmbedsBase64Chars(4, 2, 2), 24u);
  EXPECT_TRUE(Decode(F16Base64(std::vector<uint16_t>(8, 0x3c00)), EmbedsDtype::kFloat16).ok());
  EXPECT_EQ(code(Decode(F16Base64(std::vector<uint16_t>(10, 0x3c00)), EmbedsDtype::kFloat16)),
            ApiErrc::kPromptEmbedsTooLong);
  EXPECT_EQ(code(Decode(F16Base64(std::vector<uint16_t>(16, 0x3c00)), EmbedsDtype::kFloat16)),
            ApiErrc::kPromptEmbedsTooLong);
}

// --- the service over stories260K -------------------------------------------------

net::Request Post(const json& body, const std::string& path = "/v1/completions") {
  net::Request r;
  r.method = "POST";
  r.target = path;
  r.headers["authorization"] = "Bearer sk-split";
  r.body = body.dump();
  return r;
}

class PromptEmbedsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CLLM_SHARED_PATH(path, kModel);
    model_ = engine::Model::Open(path).value();
    // Each message between control tokens: a text run of its own on both
    // paths, so the client's separately tokenized content matches exactly.
    auto tmpl = engine::ChatTemplate::FromSource("{% for m in messages %}<s>{{ m.content }}</s>{% endfor %}", "<s>",
                                                 "</s>");
    ASSERT_TRUE(tmpl.ok()) << tmpl.detail();
    ServiceOptions so;
    so.model_name = "stories";
    so.api_keys = ApiKeys::Parse(R"({"keys": [{"user": "split", "sha256": ")" + ApiKeys::DigestHex("sk-split") +
                                 R"(", "prompt_embeds": true}]})")
                      .value();
    so.prompt_embeds = PromptEmbedsPolicy::kApiKey;
    so.chat_template = std::make_shared<const engine::ChatTemplate>(std::move(tmpl).value());
    service_ = std::make_unique<Service>(*model_, so);
  }
  json Answer(const json& body, const std::string& path = "/v1/completions") {
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(Post(body, path), w);
    EXPECT_TRUE(w->WaitComplete());
    auto j = json::parse(w->body(), nullptr, false);
    j["http_status"] = w->status();
    return j;
  }
  // Rows: token ids as the engine embeds them (ε = ∞ on a split client).
  std::vector<float> Rows(const std::vector<engine::TokenId>& ids) {
    const size_t n_embd = static_cast<size_t>(model_->config().n_embd);
    std::vector<float> out(ids.size() * n_embd);
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_TRUE(model_->TokenEmbedding(ids[i], std::span<float>(out.data() + i * n_embd, n_embd)).ok());
    }
    return out;
  }
  // Halves of `rows`, asserting each is exact (the f16 model's rows are).
  std::vector<uint16_t> Halves(const std::vector<float>& rows) {
    std::vector<uint16_t> h(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      h[i] = engine::F32ToF16(rows[i]);
      EXPECT_EQ(engine::F16ToF32(h[i]), rows[i]) << "row value " << i << " is not exact in float16";
    }
    return h;
  }
  std::string Code(const json& j) { return j["error"]["code"].get<std::string>(); }

  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<Service> service_;
};

const char kPrompt[] = "Once upon a time, there was a little girl";

TEST_F(PromptEmbedsServiceTest, CompletionFromRowsMatchesTheTextPrompt) {
  const json common = {{"max_tokens", 24}, {"temperature", 0}};
  json text_body = common;
  text_body["prompt"] = kPrompt;
  const json text = Answer(text_body);
  ASSERT_EQ(text["http_status"], 200) << text.dump();
  ASSERT_FALSE(text["choices"][0]["text"].get<std::string>().empty());

  const auto ids = model_->tokenizer().Encode(kPrompt, /*add_special=*/true, /*parse_special=*/false);
  const auto rows = Rows(ids);
  json f32 = common;
  f32["prompt_embeds"] = F32Base64(rows);
  json f16 = common;
  f16["prompt_embeds"] = F16Base64(Halves(rows));
  f16["prompt_embeds_dtype"] = "float16";
  for (const json& body : {f32, f16}) {
    const json got = Answer(body);
    ASSERT_EQ(got["http_status"], 200) << got.dump();
    EXPECT_EQ(got["choices"][0]["text"], text["choices"][0]["text"]);
    EXPECT_EQ(got["usage"]["prompt_tokens"].get<size_t>(), ids.size());
    EXPECT_EQ(got["usage"]["completion_tokens"], text["usage"]["completion_tokens"]);
  }
}

TEST_F(PromptEmbedsServiceTest, StreamedCompletionFromRowsMatchesTheTextPrompt) {
  auto streamed = [&](json body) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    body["max_tokens"] = 16;
    body["temperature"] = 0;
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(Post(body), w);
    EXPECT_TRUE(w->WaitComplete());
    EXPECT_EQ(w->status(), 200);
    std::string text;
    int prompt_tokens = -1;
    for (const auto& e : w->writes()) {
      if (e.rfind("data: {", 0) != 0) continue;
      auto j = json::parse(e.substr(6));
      if (!j["choices"].empty()) text += j["choices"][0]["text"].get<std::string>();
      if (j.contains("usage") && j["usage"].is_object()) prompt_tokens = j["usage"]["prompt_tokens"];
    }
    return std::make_pair(text, prompt_tokens);
  };
  const auto ids = model_->tokenizer().Encode(kPrompt, true, false);
  const auto from_text = streamed({{"prompt", kPrompt}});
  const auto from_rows = streamed({{"prompt_embeds", F32Base64(Rows(ids))}});
  EXPECT_FALSE(from_text.first.empty());
  EXPECT_EQ(from_rows.first, from_text.first);
  EXPECT_EQ(from_rows.second, static_cast<int>(ids.size()));
}

TEST_F(PromptEmbedsServiceTest, ChatEmbedsPartMatchesTheTextMessage) {
  const char kUser[] = "Once upon a time, there was a big dog";
  const json system = {{"role", "system"}, {"content", "Lily liked to play."}};
  const json common = {{"max_tokens", 16}, {"temperature", 0}};
  json text_body = common;
  text_body["messages"] = {system, {{"role", "user"}, {"content", kUser}}};
  const json text = Answer(text_body, "/v1/chat/completions");
  ASSERT_EQ(text["http_status"], 200) << text.dump();
  ASSERT_FALSE(text["choices"][0]["message"]["content"].get<std::string>().empty());

  // The client tokenizes its content alone (no BOS) and sends the rows.
  const auto rows = Rows(model_->tokenizer().Encode(kUser, /*add_special=*/false, /*parse_special=*/false));
  for (const char* dtype : {"float32", "float16"}) {
    json part = {{"type", "prompt_embeds"}, {"prompt_embeds_dtype", dtype}};
    part["prompt_embeds"] = std::string(dtype) == "float16" ? F16Base64(Halves(rows)) : F32Base64(rows);
    json body = common;
    body["messages"] = {system, {{"role", "user"}, {"content", json::array({part})}}};
    const json got = Answer(body, "/v1/chat/completions");
    ASSERT_EQ(got["http_status"], 200) << got.dump();
    EXPECT_EQ(got["choices"][0]["message"]["content"], text["choices"][0]["message"]["content"]) << dtype;
    EXPECT_EQ(got["usage"]["prompt_tokens"], text["usage"]["prompt_tokens"]) << dtype;
  }
}

// Text parts around an embeds part: the text is tokenized in place, the
// rows go between.
TEST_F(PromptEmbedsServiceTest, ChatMixesTextAndEmbedsParts) {
  const auto rows = Rows(model_->tokenizer().Encode("there was a big dog", false, false));
  const size_t n_rows = rows.size() / static_cast<size_t>(model_->config().n_embd);
  const json content = json::array({{{"type", "text"}, {"text", "Once upon a time,"}},
                                    {{"type", "prompt_embeds"}, {"prompt_embeds", F32Base64(rows)}},
                                    {{"type", "text"}, {"text", " and a cat."}}});
  const json got = Answer({{"messages", {{{"role", "user"}, {"content", content}}}}, {"max_tokens", 4}},
                          "/v1/chat/completions");
  ASSERT_EQ(got["http_status"], 200) << got.dump();
  // <s> (twice: the tokenizer's and the template's), the text pieces, the rows, </s>.
  EXPECT_GT(got["usage"]["prompt_tokens"].get<size_t>(), n_rows + 6);
}

// The rendered prompt must hold each placeholder exactly once, in order: a
// template that drops, repeats or reorders content cannot carry rows.
TEST_F(PromptEmbedsServiceTest, ChatMatrixNeedsEachPlaceholderOnceInOrder) {
  const std::vector<PromptEmbedsInput> parts = {{F32Base64(Rows({300})), EmbedsDtype::kFloat32},
                                                {F32Base64(Rows({301, 302})), EmbedsDtype::kFloat32}};
  const std::vector<std::string> ph = {"cllmembedsAx", "cllmembedsBx"};
  const int context = service_->scheduler().context_length();
  auto build = [&](const std::string& text) {
    return ChatPromptEmbeds(*model_, context, engine::ChatText{text, {}}, ph, parts);
  };
  auto ok = build("Hi cllmembedsAx and cllmembedsBx.");
  ASSERT_TRUE(ok.ok()) << ok.detail();
  // BOS, "Hi", the part, "and", the part, "." — the parts' rows in place.
  const size_t n_embd = static_cast<size_t>(model_->config().n_embd);
  const auto& m = **ok;
  const auto row300 = Rows({300});
  const auto hi = model_->tokenizer().Encode("Hi ", true, false);
  ASSERT_GE(m.size(), (hi.size() + 4) * n_embd);
  EXPECT_TRUE(std::equal(row300.begin(), row300.end(), m.begin() + hi.size() * n_embd));
  for (const char* bad : {"Hi and cllmembedsBx.", "cllmembedsAx cllmembedsAx cllmembedsBx",
                          "cllmembedsBx cllmembedsAx"}) {
    auto r = build(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.code(), ApiErrc::kPromptEmbedsInvalid) << bad;
  }
}

// Text beside the parts is counted in tokens before it becomes rows (n_embd
// floats each): text longer than the context is refused as too long
// wherever it stands, without a context's worth of rows made for it first.
TEST_F(PromptEmbedsServiceTest, ChatTextLongerThanTheContextIsRefusedBeforeItBecomesRows) {
  const std::vector<PromptEmbedsInput> parts = {{F32Base64(Rows({300})), EmbedsDtype::kFloat32}};
  const std::vector<std::string> ph = {"cllmembedsAx"};
  const int context = service_->scheduler().context_length();
  std::string words;
  for (int i = 0; i < 4 * context; ++i) words += " dog";
  for (const std::string& text : {words + " cllmembedsAx.", "cllmembedsAx " + words}) {
    auto r = ChatPromptEmbeds(*model_, context, engine::ChatText{text, {}}, ph, parts);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.code(), ApiErrc::kPromptEmbedsTooLong) << r.detail();
  }
  auto fits = ChatPromptEmbeds(*model_, context, engine::ChatText{"a dog cllmembedsAx.", {}}, ph, parts);
  EXPECT_TRUE(fits.ok()) << fits.detail();
}

TEST_F(PromptEmbedsServiceTest, MalformedRowsGetA400NamingTheProblem) {
  const int n_embd = model_->config().n_embd;
  const std::vector<float> one_row = Rows({1});
  std::vector<float> bad = one_row;
  const auto completions = [&](json body) {
    body["max_tokens"] = 2;
    return Answer(body);
  };
  auto check = [&](const json& body, int status, const char* code) {
    const json got = completions(body);
    EXPECT_EQ(got["http_status"], status) << body.dump().substr(0, 200);
    EXPECT_EQ(Code(got), code) << got.dump();
    if (status == 400) {
      EXPECT_EQ(got["error"]["type"], "invalid_request_error");
    }
  };
  check({{"prompt_embeds", "***"}}, 400, "prompt_embeds_invalid");                             // not base64
  check({{"prompt_embeds", F32Base64(std::vector<float>(n_embd + 1, 0.5f))}}, 400, "prompt_embeds_invalid");
  check({{"prompt_embeds", ""}}, 400, "prompt_embeds_invalid");                                // 0 rows
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  check({{"prompt_embeds", F32Base64(bad)}}, 400, "prompt_embeds_invalid");
  bad[3] = std::numeric_limits<float>::infinity();
  check({{"prompt_embeds", F32Base64(bad)}}, 400, "prompt_embeds_invalid");
  check({{"prompt", "Hi"}, {"prompt_embeds", F32Base64(one_row)}}, 400, "prompt_embeds_invalid");
  check({{"prompt_embeds", F32Base64(one_row)}, {"prompt_embeds_dtype", "bfloat16"}}, 400, "prompt_embeds_invalid");
  check({{"prompt_embeds", 7}}, 400, "prompt_embeds_invalid");
  // Over the byte limit (context · n_embd · 4), refused before decoding: it
  // is not even base64.
  const int context = service_->scheduler().context_length();
  check({{"prompt_embeds", std::string(MaxEmbedsBase64Chars(context, n_embd) + 4, '!')}}, 400,
        "prompt_embeds_too_long");
  // Within the bytes but a whole context of rows: nothing left to generate.
  std::vector<float> full(static_cast<size_t>(context) * n_embd, 0.01f);
  check({{"prompt_embeds", F32Base64(full)}}, 400, "prompt_embeds_too_long");
  // Rows + max_tokens over the context: the usual context_length_exceeded.
  full.resize(static_cast<size_t>(context - 1) * n_embd);
  const json over = Answer({{"prompt_embeds", F32Base64(full)}, {"max_tokens", 2}});
  EXPECT_EQ(over["http_status"], 400);
  EXPECT_EQ(Code(over), "context_length_exceeded");

  // Chat: embeds parts only in user messages, and well-formed there too.
  const json part = {{"type", "prompt_embeds"}, {"prompt_embeds", F32Base64(one_row)}};
  for (const char* role : {"system", "assistant"}) {
    const json got = Answer({{"messages", {{{"role", role}, {"content", json::array({part})}},
                                           {{"role", "user"}, {"content", "Hi"}}}},
                             {"max_tokens", 2}},
                            "/v1/chat/completions");
    EXPECT_EQ(got["http_status"], 400) << role;
    EXPECT_EQ(Code(got), "prompt_embeds_invalid") << role;
  }
  json nan_part = part;
  nan_part["prompt_embeds"] = F32Base64(bad);  // holds an Inf
  const json got = Answer({{"messages", {{{"role", "user"}, {"content", json::array({nan_part})}}}}, {"max_tokens", 2}},
                          "/v1/chat/completions");
  EXPECT_EQ(got["http_status"], 400);
  EXPECT_EQ(Code(got), "prompt_embeds_invalid");
  json extra = part;
  extra["text"] = "smuggled";
  const json unknown = Answer({{"messages", {{{"role", "user"}, {"content", json::array({extra})}}}}},
                              "/v1/chat/completions");
  EXPECT_EQ(Code(unknown), "prompt_embeds_invalid");
}

}  // namespace
}  // namespace cllm::server
