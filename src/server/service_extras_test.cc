// The service's OpenAI surface beyond one plain choice: n choices (whole and
// streamed), logprobs, logit_bias checked against the vocabulary,
// /tokenize and /detokenize in llama-server's shapes, /v1/embeddings.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <set>

#include "base/encoding.h"
#include "server/service.h"
#include "support/fake_writer.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;
using testing::FakeWriter;

constexpr char kStories[] = "models/stories260K-f16.gguf";
constexpr char kQwen3[] = "models/qwen3-tiny-random-q8_0.gguf";

class ServiceExtrasTest : public ::testing::Test {
 protected:
  void Start(const std::filesystem::path& path, int context = 0) {
    model_ = engine::Model::Open(path).value();
    ServiceOptions so;
    so.model_name = "m";
    const std::string keys = R"({"keys": [{"user": "bob", "sha256": ")" + ApiKeys::DigestHex("sk-bob") + R"("}]})";
    so.api_keys = ApiKeys::Parse(keys).value();
    so.scheduler.context_length = context;
    service_ = std::make_unique<Service>(*model_, so);
  }
  std::shared_ptr<FakeWriter> Call(const std::string& path, const json& body, const std::string& key = "sk-bob") {
    net::Request r;
    r.method = "POST";
    r.target = path;
    if (!key.empty()) r.headers["authorization"] = "Bearer " + key;
    r.body = body.dump();
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(r, w);
    EXPECT_TRUE(w->WaitComplete());
    return w;
  }
  // Events returns the JSON of each "data: {...}" event of a stream.
  static std::vector<json> Events(const FakeWriter& w, bool* saw_done) {
    std::vector<json> out;
    *saw_done = false;
    for (const std::string& e : w.writes()) {
      if (e == "data: [DONE]\n\n") {
        *saw_done = true;
        continue;
      }
      out.push_back(json::parse(e.substr(6)));
    }
    return out;
  }
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceExtrasTest, NChoicesAnswerOnceWithEachIndexAndSummedUsage) {
  CLLM_SHARED_PATH(path, kStories);
  Start(path);
  auto one = Call("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"seed", 5}});
  ASSERT_EQ(one->status(), 200) << one->body();
  auto w = Call("/v1/completions",
                {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"seed", 5}, {"n", 3}, {"temperature", 1.0}});
  ASSERT_EQ(w->status(), 200) << w->body();
  const json body = json::parse(w->body());
  ASSERT_EQ(body["choices"].size(), 3u);
  int completion = 0;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(body["choices"][i]["index"], i);
  // Choice 0 keeps the request's seed: the same text as n = 1.
  EXPECT_EQ(body["choices"][0]["text"], json::parse(one->body())["choices"][0]["text"]);
  std::set<std::string> texts;
  for (const auto& c : body["choices"]) texts.insert(c["text"].get<std::string>());
  EXPECT_GE(texts.size(), 2u) << "choices share one seed";
  const json one_usage = json::parse(one->body())["usage"];
  completion = body["usage"]["completion_tokens"].get<int>();
  EXPECT_EQ(body["usage"]["prompt_tokens"], one_usage["prompt_tokens"]);  // counted once
  EXPECT_GT(completion, one_usage["completion_tokens"].get<int>());
  EXPECT_EQ(body["usage"]["total_tokens"].get<int>(), body["usage"]["prompt_tokens"].get<int>() + completion);
}

TEST_F(ServiceExtrasTest, NChoicesStreamWithTheirIndexAndOneDone) {
  CLLM_SHARED_PATH(path, kStories);
  Start(path);
  auto w = Call("/v1/completions", {{"prompt", "Once upon a time"},
                                    {"max_tokens", 6},
                                    {"n", 2},
                                    {"stream", true},
                                    {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(w->status(), 200);
  bool done = false;
  const std::vector<json> events = Events(*w, &done);
  EXPECT_TRUE(done);
  std::set<int> indexes, finished;
  int usage_events = 0;
  for (const json& e : events) {
    if (e["choices"].empty()) {
      ++usage_events;
      EXPECT_GT(e["usage"]["completion_tokens"].get<int>(), 6);  // both choices' tokens
      continue;
    }
    const int index = e["choices"][0]["index"].get<int>();
    indexes.insert(index);
    if (!e["choices"][0]["finish_reason"].is_null()) finished.insert(index);
  }
  EXPECT_EQ(indexes, (std::set<int>{0, 1}));
  EXPECT_EQ(finished, (std::set<int>{0, 1}));
  EXPECT_EQ(usage_events, 1);
  EXPECT_EQ(w->writes().back(), "data: [DONE]\n\n");
}

TEST_F(ServiceExtrasTest, CompletionLogprobsMatchTheTokens) {
  CLLM_SHARED_PATH(path, kStories);
  Start(path);
  auto w = Call("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 6}, {"logprobs", 3},
                                    {"temperature", 0}});
  ASSERT_EQ(w->status(), 200) << w->body();
  const json choice = json::parse(w->body())["choices"][0];
  const json& lp = choice["logprobs"];
  const size_t n = lp["tokens"].size();
  ASSERT_GT(n, 0u);
  EXPECT_EQ(lp["token_logprobs"].size(), n);
  EXPECT_EQ(lp["top_logprobs"].size(), n);
  std::string joined;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(lp["text_offset"][i].get<size_t>(), joined.size());
    joined += lp["tokens"][i].get<std::string>();
    EXPECT_LE(lp["top_logprobs"][i].size(), 3u);
    // Greedy: the chosen token is the most likely one.
    float best = -1e30f;
    for (const auto& [tok, v] : lp["top_logprobs"][i].items()) best = std::max(best, v.get<float>());
    EXPECT_NEAR(lp["token_logprobs"][i].get<float>(), best, 1e-5);
    EXPECT_LE(lp["token_logprobs"][i].get<float>(), 0.0f);
  }
  EXPECT_EQ(joined, choice["text"]);
}

TEST_F(ServiceExtrasTest, ChatLogprobsShapeWholeAndStreamed) {
  CLLM_SHARED_PATH(path, kQwen3);
  Start(path);
  const json messages = {{{"role", "user"}, {"content", "Hello"}}};
  auto w = Call("/v1/chat/completions",
                {{"messages", messages}, {"max_tokens", 5}, {"logprobs", true}, {"top_logprobs", 2}});
  ASSERT_EQ(w->status(), 200) << w->body();
  const json body = json::parse(w->body());
  const json& content = body["choices"][0]["logprobs"]["content"];
  ASSERT_FALSE(content.empty()) << w->body();
  for (const json& t : content) {
    EXPECT_TRUE(t["token"].is_string());
    EXPECT_TRUE(t["bytes"].is_array());
    EXPECT_EQ(t["top_logprobs"].size(), 2u);
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<float>(), t["top_logprobs"][1]["logprob"].get<float>());
  }
  auto s = Call("/v1/chat/completions",
                {{"messages", messages}, {"max_tokens", 5}, {"logprobs", true}, {"stream", true}});
  bool done = false;
  size_t streamed = 0;
  for (const json& e : Events(*s, &done)) {
    const json& c = e["choices"][0];
    if (c.contains("logprobs") && c["logprobs"].is_object()) streamed += c["logprobs"]["content"].size();
  }
  EXPECT_TRUE(done);
  EXPECT_GT(streamed, 0u);
  EXPECT_LE(streamed, 5u);
}

TEST_F(ServiceExtrasTest, LogitBiasOutsideTheVocabularyIs400WithParam) {
  CLLM_SHARED_PATH(path, kStories);
  Start(path);
  auto w = Call("/v1/completions", {{"prompt", "Hi"}, {"logit_bias", {{"100000", 5}}}});
  EXPECT_EQ(w->status(), 400);
  EXPECT_EQ(json::parse(w->body())["error"]["param"], "logit_bias");
  // A bias of 100 on one token makes greedy decoding repeat it.
  auto forced = Call("/v1/completions",
                     {{"prompt", "Hi"}, {"logit_bias", {{"300", 100}}}, {"max_tokens", 4}, {"temperature", 0},
                      {"logprobs", 0}});
  ASSERT_EQ(forced->status(), 200) << forced->body();
  const std::string piece = model_->tokenizer().TokenToPiece(300);
  const json choice = json::parse(forced->body())["choices"][0];
  EXPECT_EQ(choice["logprobs"]["tokens"], json::array({piece, piece, piece, piece}));
}

TEST_F(ServiceExtrasTest, TokenizeAndDetokenizeRoundTripInLlamaServerShapes) {
  CLLM_SHARED_PATH(path, kStories);
  Start(path);
  const std::string text = "Once upon a time, a little dog";
  auto t = Call("/tokenize", {{"content", text}});
  ASSERT_EQ(t->status(), 200) << t->body();
  const json tokens = json::parse(t->body())["tokens"];
  EXPECT_EQ(tokens.get<std::vector<int>>(), [&] {
    std::vector<int> ids;
    for (auto id : model_->tokenizer().Encode(text, false, true)) ids.push_back(id);
    return ids;
  }());
  auto with_bos = Call("/tokenize", {{"content", text}, {"add_special", true}});
  EXPECT_EQ(json::parse(with_bos->body())["tokens"].size(), tokens.size() + 1);
  auto pieces = Call("/tokenize", {{"content", text}, {"with_pieces", true}});
  const json p = json::parse(pieces->body())["tokens"];
  ASSERT_EQ(p.size(), tokens.size());
  std::string joined;
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(p[i]["id"], tokens[i]);
    joined += p[i]["piece"].get<std::string>();
  }
  auto d = Call("/detokenize", {{"tokens", tokens}});
  ASSERT_EQ(d->status(), 200) << d->body();
  EXPECT_EQ(json::parse(d->body())["content"], joined);
  EXPECT_NE(joined.find("little dog"), std::string::npos);
  // Errors name their field; keys are required.
  EXPECT_EQ(json::parse(Call("/detokenize", {{"tokens", {1, 999999}}})->body())["error"]["param"], "tokens");
  EXPECT_EQ(json::parse(Call("/tokenize", {{"content", 5}})->body())["error"]["param"], "content");
  EXPECT_EQ(Call("/tokenize", {{"content", "x"}, {"extra", 1}})->status(), 400);
  EXPECT_EQ(Call("/tokenize", {{"content", "x"}}, "sk-nobody")->status(), 401);
}

std::vector<float> Vector(const json& item) {
  return item["embedding"].get<std::vector<float>>();
}

TEST_F(ServiceExtrasTest, EmbeddingsAreNormalisedDeterministicAndBatched) {
  CLLM_SHARED_PATH(path, kStories);
  Start(path, 64);
  const int n_embd = model_->config().n_embd;
  auto w = Call("/v1/embeddings", {{"input", "The cat sat on the mat."}, {"model", "m"}});
  ASSERT_EQ(w->status(), 200) << w->body();
  const json one = json::parse(w->body());
  EXPECT_EQ(one["object"], "list");
  EXPECT_EQ(one["model"], "m");
  ASSERT_EQ(one["data"].size(), 1u);
  EXPECT_EQ(one["data"][0]["object"], "embedding");
  EXPECT_EQ(one["data"][0]["index"], 0);
  const std::vector<float> a = Vector(one["data"][0]);
  ASSERT_EQ(a.size(), static_cast<size_t>(n_embd));
  double norm = 0;
  for (float x : a) norm += static_cast<double>(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_GT(one["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(one["usage"]["total_tokens"], one["usage"]["prompt_tokens"]);
  // A batch: the same text gives the same vector, another text another one.
  auto batch = Call("/v1/embeddings", {{"input", {"The cat sat on the mat.", "A dog ran in the park."}}});
  ASSERT_EQ(batch->status(), 200) << batch->body();
  const json b = json::parse(batch->body());
  ASSERT_EQ(b["data"].size(), 2u);
  EXPECT_EQ(b["data"][1]["index"], 1);
  const std::vector<float> a2 = Vector(b["data"][0]), c = Vector(b["data"][1]);
  for (int i = 0; i < n_embd; ++i) EXPECT_NEAR(a[i], a2[i], 1e-6);
  double dot = 0;
  for (int i = 0; i < n_embd; ++i) dot += static_cast<double>(a[i]) * c[i];
  EXPECT_LT(dot, 0.9999);
  // Token input and base64 encoding give the same vector.
  std::vector<int> ids;
  for (auto id : model_->tokenizer().Encode("The cat sat on the mat.", true, false)) ids.push_back(id);
  auto b64 = Call("/v1/embeddings", {{"input", {ids}}, {"encoding_format", "base64"}});
  ASSERT_EQ(b64->status(), 200) << b64->body();
  auto raw = Base64Decode(json::parse(b64->body())["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->size(), a.size() * sizeof(float));
  std::vector<float> decoded(a.size());
  std::memcpy(decoded.data(), raw->data(), raw->size());
  for (int i = 0; i < n_embd; ++i) EXPECT_NEAR(decoded[i], a[i], 1e-6);
  // One token list longer than the number of inputs allowed (32) is one input.
  std::vector<int> forty(40, ids.back());
  auto long_list = Call("/v1/embeddings", {{"input", forty}});
  ASSERT_EQ(long_list->status(), 200) << long_list->body();
  EXPECT_EQ(json::parse(long_list->body())["data"].size(), 1u);
  // Errors: empty input, over the context, a bad encoding, an unknown key.
  EXPECT_EQ(json::parse(Call("/v1/embeddings", {{"input", ""}})->body())["error"]["param"], "input");
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "Once upon a time ";
  auto too_long = Call("/v1/embeddings", {{"input", long_text}});
  EXPECT_EQ(too_long->status(), 400);
  EXPECT_EQ(json::parse(too_long->body())["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(Call("/v1/embeddings", {{"input", "x"}, {"encoding_format", "int8"}})->status(), 400);
  EXPECT_EQ(Call("/v1/embeddings", {{"input", "x"}}, "sk-nobody")->status(), 401);
}

}  // namespace
}  // namespace cllm::server
