// The service over a fake writer (no network): completions answer from the
// scheduler after Handle has returned; per-user limits and token budgets
// answer 429 with Retry-After while other users are served; a client that
// goes away cancels its generation; max_tokens defaults to the rest of the
// context; a draining service answers 503.
#include "server/service.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "attestation/sim/sim_attester.h"
#include "channel/server_channel.h"
#include "support/fake_writer.h"
#include "support/gate.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;
using testing::FakeWriter;

constexpr char kModel[] = "models/stories260K-f16.gguf";

// alice: one request at a time, none waiting; bob: the defaults; carol: 60
// tokens a minute.
ApiKeys Keys() {
  const std::string text = R"({"keys": [
    {"user": "alice", "sha256": ")" + ApiKeys::DigestHex("sk-alice") + R"(", "limits": {"max_active": 1, "max_queued": 0}},
    {"user": "bob", "sha256": ")" + ApiKeys::DigestHex("sk-bob") + R"("},
    {"user": "carol", "sha256": ")" + ApiKeys::DigestHex("sk-carol") + R"(", "limits": {"tokens_per_minute": 60}}]})";
  return ApiKeys::Parse(text).value();
}

net::Request Post(const std::string& key, const json& body, const std::string& path = "/v1/completions") {
  net::Request r;
  r.method = "POST";
  r.target = path;
  r.headers["authorization"] = "Bearer " + key;
  r.body = body.dump();
  return r;
}

class ServiceTest : public ::testing::Test {
 protected:
  void Start(int context = 0, bool anonymous = false, std::shared_ptr<const engine::ChatTemplate> tmpl = nullptr) {
    auto m = engine::Model::Open(testing::SharedDir() / kModel);
    ASSERT_TRUE(m.ok());
    model_ = std::move(m).value();
    ServiceOptions so;
    so.model_name = "stories";
    if (!anonymous) so.api_keys = Keys();
    so.scheduler.context_length = context;
    so.chat_template = std::move(tmpl);
    service_ = std::make_unique<Service>(*model_, so);
  }
  // StartKeyed serves the model with the test keys and `tune` applied.
  void StartKeyed(const std::function<void(ServiceOptions&)>& tune) {
    model_ = engine::Model::Open(testing::SharedDir() / kModel).value();
    ServiceOptions so;
    so.model_name = "stories";
    so.api_keys = Keys();
    tune(so);
    service_ = std::make_unique<Service>(*model_, so);
  }
  std::shared_ptr<FakeWriter> Call(const net::Request& r) {
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(r, w);
    return w;
  }
  // HoldWorker submits another user's sequence that holds the worker at its
  // first token until `gate` opens: what is submitted meanwhile waits.
  bool HoldWorker(cllm::testing::Gate& gate) {
    engine::SequenceRequest blocker;
    blocker.user = "blocker";
    blocker.prompt = model_->tokenizer().Encode("Hi", true, true);
    blocker.max_tokens = 2;
    blocker.stop_at_eog = false;
    blocker.on_token = [hold = gate.Holder(), first = true](engine::TokenId, std::string_view) mutable {
      if (first) hold();
      first = false;
      return true;
    };
    return service_->scheduler().Submit(std::move(blocker)).ok() && gate.WaitHeld();
  }
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<Service> service_;
};

using cllm::testing::Gate;

TEST_F(ServiceTest, UserOverItsLimitGets429WithRetryAfterWhileAnotherIsServed) {
  CLLM_SHARED_PATH(path, kModel);
  Start();
  // Another sequence holds the worker at its first token: what is
  // submitted meanwhile waits, and Handle returns without waiting for it.
  Gate gate;
  ASSERT_TRUE(HoldWorker(gate));

  // alice's stream takes her one allowance (max_active 1, max_queued 0).
  auto a1 = Call(Post("sk-alice", {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"stream", true}}));
  EXPECT_EQ(a1->status(), 200);  // the stream's head went out before any token
  auto a2 = Call(Post("sk-alice", {{"prompt", "Hi"}, {"max_tokens", 8}}));
  EXPECT_EQ(a2->status(), 429);
  EXPECT_EQ(a2->header("Retry-After"), "1");
  EXPECT_EQ(json::parse(a2->body())["error"]["code"], "rate_limit_exceeded");

  auto b1 = Call(Post("sk-bob", {{"prompt", "Hi"}, {"max_tokens", 8}, {"temperature", 0}}));
  EXPECT_EQ(b1->responses(), 0);  // accepted, waiting for the worker
  gate.Open();
  ASSERT_TRUE(b1->WaitComplete());
  EXPECT_EQ(b1->status(), 200);
  EXPECT_GT(json::parse(b1->body())["usage"]["completion_tokens"].get<int>(), 0);
  ASSERT_TRUE(a1->WaitComplete());
  EXPECT_NE(a1->writes().back().find("[DONE]"), std::string::npos);
  // alice may ask again once her request has ended.
  auto a3 = Call(Post("sk-alice", {{"prompt", "Hi"}, {"max_tokens", 4}}));
  ASSERT_TRUE(a3->WaitComplete());
  EXPECT_EQ(a3->status(), 200);
}

TEST_F(ServiceTest, TokensPerMinuteBudgetGives429WithSecondsUntilEnoughReturns) {
  CLLM_SHARED_PATH(path, kModel);
  Start();
  std::string long_prompt;
  for (int i = 0; i < 20; ++i) long_prompt += "Once upon a time ";  // > 60 tokens: the whole budget
  auto c1 = Call(Post("sk-carol", {{"prompt", long_prompt}, {"max_tokens", 2}}));
  ASSERT_TRUE(c1->WaitComplete());
  EXPECT_EQ(c1->status(), 200);
  auto c2 = Call(Post("sk-carol", {{"prompt", "Hi"}, {"max_tokens", 2}}));
  EXPECT_EQ(c2->status(), 429);
  // In debt by at least the prompt over 60: a minute or more at 1 token/s.
  EXPECT_GE(std::stoi(c2->header("Retry-After")), 20);
  auto b = Call(Post("sk-bob", {{"prompt", long_prompt}, {"max_tokens", 2}}));  // bob has no budget
  ASSERT_TRUE(b->WaitComplete());
  EXPECT_EQ(b->status(), 200);
}

// A request reserves its max_tokens with its prompt: a key cannot start
// more generation than its budget holds before any of it is charged.
TEST_F(ServiceTest, TheBudgetReservesMaxTokensUntilTheRequestEnds) {
  CLLM_SHARED_PATH(path, kModel);
  Start();
  Gate gate;  // another user's sequence holds the worker: carol's requests wait, uncharged so far
  ASSERT_TRUE(HoldWorker(gate));
  // carol's budget is 60 tokens a minute: "Hi" and 40 more is most of it.
  auto c1 = Call(Post("sk-carol", {{"prompt", "Hi"}, {"max_tokens", 40}}));
  EXPECT_EQ(c1->responses(), 0);  // admitted, waiting
  auto c2 = Call(Post("sk-carol", {{"prompt", "Hi"}, {"max_tokens", 40}}));
  EXPECT_EQ(c2->status(), 429) << "a second 40-token generation started on a budget that holds one";
  EXPECT_GE(std::stoi(c2->header("Retry-After")), 20);
  gate.Open();
  ASSERT_TRUE(c1->WaitComplete());
  EXPECT_EQ(c1->status(), 200) << c1->body();
  auto c3 = Call(Post("sk-carol", {{"prompt", "Hi"}, {"max_tokens", 1}}));
  ASSERT_TRUE(c3->WaitComplete());
  EXPECT_EQ(c3->status(), 200) << c3->body();
}

TEST_F(ServiceTest, ClientGoneBeforeTheFirstTokenCancelsANonStreamingRequest) {
  CLLM_SHARED_PATH(path, kModel);
  Start(1024);
  auto w = std::make_shared<FakeWriter>();
  w->GoClientGone();  // disconnected while its request was being handled
  service_->Handle(Post("sk-bob", {{"prompt", "Once upon a time"}, {"max_tokens", 900}}), w);
  // Never submitted: no queue slot, no prefill, no token for nobody.
  const auto stats = service_->scheduler().Stats();
  EXPECT_EQ(stats.queued + stats.active, 0);
  EXPECT_EQ(stats.completed, 0u);
  EXPECT_EQ(stats.prompt_tokens, 0u) << "prefilled for a client that had gone";
  EXPECT_EQ(stats.generated_tokens, 0u) << "generated for a client that had gone";
  EXPECT_EQ(w->responses(), 0);
}

TEST_F(ServiceTest, MaxTokensDefaultsToTheRestOfTheContext) {
  CLLM_SHARED_PATH(path, kModel);
  Start(48);  // the old default of 256 would not fit at all
  auto w = Call(Post("sk-bob", {{"prompt", "Once upon a time"}, {"temperature", 0}}));
  ASSERT_TRUE(w->WaitComplete());
  ASSERT_EQ(w->status(), 200) << w->body();
  auto usage = json::parse(w->body())["usage"];
  EXPECT_LE(usage["total_tokens"].get<int>(), 48);
  // Asking for more than fits stays an error: OpenAI's 400
  // context_length_exceeded naming the input field.
  auto too_many = Call(Post("sk-bob", {{"prompt", "Once upon a time"}, {"max_tokens", 48}}));
  EXPECT_EQ(too_many->status(), 400);
  auto error = json::parse(too_many->body())["error"];
  EXPECT_EQ(error["code"], "context_length_exceeded");
  EXPECT_EQ(error["param"], "prompt");
  std::string long_prompt;
  for (int i = 0; i < 20; ++i) long_prompt += "Once upon a time ";
  auto full = Call(Post("sk-bob", {{"prompt", long_prompt}}));
  EXPECT_EQ(full->status(), 400);
  EXPECT_EQ(json::parse(full->body())["error"]["code"], "context_length_exceeded");
  auto chat = Call(Post("sk-bob", {{"messages", {{{"role", "user"}, {"content", long_prompt}}}}}, "/v1/chat/completions"));
  EXPECT_EQ(chat->status(), 400);
  EXPECT_EQ(json::parse(chat->body())["error"]["param"], "messages");
}

// Without API keys there is nobody to be fair between: the one anonymous
// user is held to the global limits, not to a user's 4 running + 16 waiting.
TEST_F(ServiceTest, AnonymousCallersAreHeldToTheGlobalLimitsOnly) {
  CLLM_SHARED_PATH(path, kModel);
  Start(0, /*anonymous=*/true);
  Gate gate;
  ASSERT_TRUE(HoldWorker(gate));
  std::vector<std::shared_ptr<FakeWriter>> calls;
  for (int i = 0; i < 30; ++i) {
    calls.push_back(Call(Post("", {{"prompt", "Hi"}, {"max_tokens", 1}})));
    EXPECT_EQ(calls.back()->responses(), 0) << "request " << i << " refused: " << calls.back()->body();
  }
  gate.Open();
  for (auto& c : calls) {
    ASSERT_TRUE(c->WaitComplete());
    EXPECT_EQ(c->status(), 200);
  }
}

TEST_F(ServiceTest, StopAdmittingAnswers503AndHealthSaysShuttingDown) {
  CLLM_SHARED_PATH(path, kModel);
  Start();
  net::Request health;
  health.method = "GET";
  health.target = "/health";
  EXPECT_EQ(Call(health)->status(), 200);
  service_->StopAdmitting();
  auto h = Call(health);
  EXPECT_EQ(h->status(), 503);
  EXPECT_EQ(json::parse(h->body())["status"], "shutting_down");
  EXPECT_EQ(Call(Post("sk-bob", {{"prompt", "Hi"}, {"max_tokens", 2}}))->status(), 503);
}

// /ready is the readiness probe: 503 until an attested identity is
// installed, 200 with it, 503 again once the service drains.
TEST_F(ServiceTest, ReadyOnlyWithAnAttestedIdentityAndNotWhileDraining) {
  CLLM_SHARED_PATH(path, kModel);
  Start();
  net::Request ready;
  ready.method = "GET";
  ready.target = "/ready";
  auto before = Call(ready);
  EXPECT_EQ(before->status(), 503);
  EXPECT_EQ(json::parse(before->body())["status"], "not_attested");

  auto attester = std::make_shared<attestation::sim::SimAttester>(
      attestation::sim::SimAttester::Create(attestation::sim::GenerateSimPlatformKey().value()).value());
  channel::ServerClaims claims;
  claims.binary_digest.fill(0xB1);
  claims.model_digest.fill(0xD1);
  claims.model_name = "stories";
  auto issuer = std::make_shared<channel::RaTlsIssuer>(attester, claims);
  auto identity = channel::ServerChannel::Create(issuer, {});
  ASSERT_TRUE(identity.ok()) << identity.detail();
  service_->SetAttestation(std::move(identity).value());
  auto attested = Call(ready);
  EXPECT_EQ(attested->status(), 200) << attested->body();
  auto j = json::parse(attested->body());
  EXPECT_EQ(j["status"], "ready");
  EXPECT_EQ(j["generation"], 1);
  EXPECT_EQ(j["trust_token"], false);
  EXPECT_GT(j["certificate_valid_s"].get<int64_t>(), 0);

  service_->StopAdmitting();
  auto draining = Call(ready);
  EXPECT_EQ(draining->status(), 503);
  EXPECT_EQ(json::parse(draining->body())["status"], "shutting_down");
}

// Chat requests render through the template the service was given: its
// kwargs reach it, and a conversation it refuses is the client's 400.
TEST_F(ServiceTest, ChatRendersThroughTheTemplateAndItsRefusalIsA400) {
  CLLM_SHARED_PATH(path, kModel);
  auto tmpl = engine::ChatTemplate::FromSource(
      "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
      "{% for m in messages %}{{ m.content }}{% endfor %}{% if long %} and then a much longer story{% endif %}",
      "", "");
  ASSERT_TRUE(tmpl.ok()) << tmpl.detail();
  Start(0, false, std::make_shared<const engine::ChatTemplate>(std::move(tmpl).value()));
  const std::string chat = "/v1/chat/completions";
  json user = json::array({{{"role", "user"}, {"content", "Once upon a time"}}});
  auto refused = Call(Post("sk-bob", {{"messages", {{{"role", "system"}, {"content", "x"}}, user[0]}}, {"max_tokens", 1}}, chat));
  EXPECT_EQ(refused->status(), 400);
  EXPECT_NE(refused->body().find("System role not supported"), std::string::npos) << refused->body();

  auto prompt_tokens = [&](const json& body) {
    auto w = Call(Post("sk-bob", body, chat));
    EXPECT_TRUE(w->WaitComplete());
    EXPECT_EQ(w->status(), 200) << w->body();
    return json::parse(w->body())["usage"]["prompt_tokens"].get<int>();
  };
  int plain = prompt_tokens({{"messages", user}, {"max_tokens", 1}});
  int longer = prompt_tokens({{"messages", user}, {"max_tokens", 1}, {"chat_template_kwargs", {{"long", true}}}});
  EXPECT_GT(longer, plain) << "chat_template_kwargs did not reach the template";
  auto reserved = Call(Post("sk-bob", {{"messages", user}, {"chat_template_kwargs", {{"messages", 1}}}}, chat));
  EXPECT_EQ(reserved->status(), 400);
}

// Without max_tokens a request gets the rest of the context, but never more
// than a request may ask for (found by review: absent, it skipped the cap).
TEST_F(ServiceTest, AbsentMaxTokensStillMeetsTheCap) {
  CLLM_SHARED_PATH(path, kModel);
  StartKeyed([](ServiceOptions& so) { so.limits.max_tokens_cap = 5; });
  auto w = Call(Post("sk-bob", {{"prompt", "Once upon a time there was"}, {"temperature", 0}}));
  ASSERT_TRUE(w->WaitComplete());
  ASSERT_EQ(w->status(), 200) << w->body();
  const json body = json::parse(w->body());
  EXPECT_EQ(body["usage"]["completion_tokens"], 5);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
}

// The usage of a completion says how many prompt tokens came from the
// user's prompt cache; a user never gets another user's (issue #13).
TEST_F(ServiceTest, UsageReportsCachedTokensOfTheSameUserOnly) {
  CLLM_SHARED_PATH(path, kModel);
  StartKeyed([](ServiceOptions& so) { so.scheduler.prompt_cache_bytes = 16 << 20; });
  std::string prompt;
  for (int i = 0; i < 6; ++i) prompt += "Once upon a time there was a little dog. ";  // ~70 of 128 tokens
  auto cached = [&](const std::string& key) {
    auto w = Call(Post(key, {{"prompt", prompt}, {"max_tokens", 2}, {"temperature", 0}}));
    EXPECT_TRUE(w->WaitComplete());
    EXPECT_EQ(w->status(), 200) << w->body();
    return json::parse(w->body())["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
  };
  EXPECT_EQ(cached("sk-alice"), 0);
  EXPECT_EQ(cached("sk-bob"), 0) << "bob's request reused alice's prompt";
  EXPECT_GE(cached("sk-alice"), engine::KvCache::kBlockSize);
  // Every body shape reports it: n > 1 (whole and streamed), logprobs
  // (found by review: those bodies had no prompt_tokens_details). Bob's
  // prompt is cached by now, and his key allows two sequences at once.
  for (const json& extra : {json{{"n", 2}}, json{{"logprobs", 2}},
                            json{{"n", 2}, {"stream", true}, {"stream_options", {{"include_usage", true}}}}}) {
    json body = {{"prompt", prompt}, {"max_tokens", 2}, {"temperature", 0}};
    body.update(extra);
    auto w = Call(Post("sk-bob", body));
    ASSERT_TRUE(w->WaitComplete());
    ASSERT_EQ(w->status(), 200) << w->body();
    json usage;
    if (body.contains("stream")) {
      for (const auto& e : w->writes()) {
        if (e.rfind("data: {", 0) != 0) continue;
        auto j = json::parse(e.substr(6));
        if (j.contains("usage") && !j["usage"].is_null()) usage = j["usage"];
      }
    } else {
      usage = json::parse(w->body())["usage"];
    }
    ASSERT_TRUE(usage.contains("prompt_tokens_details")) << extra.dump() << " " << usage.dump();
    EXPECT_GE(usage["prompt_tokens_details"]["cached_tokens"].get<int>(), engine::KvCache::kBlockSize)
        << extra.dump();
  }
}

// Without API keys every caller is the one user "": a prompt cache or a
// kept grammar would tell one caller what another sent (by cached_tokens or
// by time), so an anonymous service keeps neither, whatever it is given.
TEST_F(ServiceTest, AnAnonymousServiceKeepsNothingAcrossRequests) {
  CLLM_SHARED_PATH(path, kModel);
  model_ = engine::Model::Open(path).value();
  ServiceOptions so;
  so.model_name = "stories";
  so.scheduler.prompt_cache_bytes = 16 << 20;
  service_ = std::make_unique<Service>(*model_, so);
  std::string prompt;
  for (int i = 0; i < 6; ++i) prompt += "Once upon a time there was a little dog. ";
  for (int i = 0; i < 2; ++i) {
    auto w = Call(Post("", {{"prompt", prompt}, {"max_tokens", 2}, {"temperature", 0}}));
    ASSERT_TRUE(w->WaitComplete());
    ASSERT_EQ(w->status(), 200) << w->body();
    EXPECT_EQ(json::parse(w->body())["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0)
        << "request " << i << " reused an earlier caller's prompt";
  }
  EXPECT_EQ(service_->scheduler().Stats().prompt_cache_bytes, 0u);

  const auto schema = nlohmann::ordered_json::parse(R"({"type": "object", "properties": {"a": {"type": "integer"}}})");
  StructuredOutput anonymous(model_->tokenizer(), /*users=*/0);
  StructuredOutput per_user(model_->tokenizer(), /*users=*/1);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(anonymous.ConstraintFor("", schema).ok());
    ASSERT_TRUE(per_user.ConstraintFor("alice", schema).ok());
  }
  EXPECT_EQ(anonymous.kept(), 0u);
  EXPECT_EQ(per_user.kept(), 1u);
}

// While a key prepares a large request, its next large one on any route
// that parses and tokenizes is 429 before any work; other keys and small
// requests pass.
TEST_F(ServiceTest, AKeyPreparesOneLargeRequestAtATimeOnEveryRoute) {
  CLLM_SHARED_PATH(path, kModel);
  Start();
  std::string text;
  while (text.size() < (80 << 10)) text += "Once upon a time there was a little dog. ";
  auto held = service_->preparing().Enter("alice", 1 << 20);  // alice's first large request, in preparation
  ASSERT_TRUE(held);
  const std::vector<std::pair<std::string, json>> routes = {
      {"/v1/completions", {{"prompt", text}, {"max_tokens", 1}}},
      {"/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", 1}}},
      {"/v1/embeddings", {{"input", text}}},
      {"/tokenize", {{"content", text}}},
  };
  for (const auto& [route, body] : routes) {
    auto w = Call(Post("sk-alice", body, route));
    ASSERT_TRUE(w->WaitComplete());
    EXPECT_EQ(w->status(), 429) << route << ": " << w->body();
    EXPECT_EQ(w->header("Retry-After"), "1") << route;
  }
  auto bob = Call(Post("sk-bob", {{"content", text}}, "/tokenize"));
  ASSERT_TRUE(bob->WaitComplete());
  EXPECT_EQ(bob->status(), 200) << bob->body();
  auto small = Call(Post("sk-alice", {{"content", "Once upon a time"}}, "/tokenize"));
  ASSERT_TRUE(small->WaitComplete());
  EXPECT_EQ(small->status(), 200) << small->body();
}

// With keys, each key keeps its own share of compiled grammars: another
// key's schemas never evict them (which its compile time would show).
TEST_F(ServiceTest, NoUsersSchemasEvictAnotherUsersGrammars) {
  CLLM_SHARED_PATH(path, kModel);
  Start();
  StructuredOutput kept(model_->tokenizer(), /*users=*/4);
  ASSERT_EQ(kept.per_user(), StructuredOutput::kMaxGrammars / 4);
  auto schema = [](int i) {
    return nlohmann::ordered_json::parse(R"({"type": "object", "properties": {"a)" + std::to_string(i) +
                                         R"(": {"type": "integer"}}})");
  };
  ASSERT_TRUE(kept.ConstraintFor("alice", schema(0)).ok());
  for (int i = 1; i <= 40; ++i) ASSERT_TRUE(kept.ConstraintFor("bob", schema(i)).ok());
  EXPECT_EQ(kept.kept(), 1 + kept.per_user());
  for (int i = 41; i <= 50; ++i) ASSERT_TRUE(kept.ConstraintFor("alice", schema(i)).ok());
  EXPECT_EQ(kept.kept(), 2 * kept.per_user()) << "alice's own schemas evict only hers";
  StructuredOutput crowded(model_->tokenizer(), /*users=*/StructuredOutput::kMaxGrammars + 1);
  ASSERT_TRUE(crowded.ConstraintFor("alice", schema(0)).ok());
  EXPECT_EQ(crowded.kept(), 0u) << "more users than grammars: nothing kept";
}

}  // namespace
}  // namespace cllm::server
